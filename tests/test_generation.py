import torch

from sar_lib.generation import _cut_at_eos, answer_texts, generate


def _prompts(tok, questions):
    return [tok.apply_chat_template([{"role": "user", "content": q}], tokenize=False,
                                    add_generation_prompt=True) for q in questions]


def test_cut_keeps_first_eos_and_flags_truncation():
    assert _cut_at_eos([5, 6, 2, 2, 2], {2}) == ([5, 6, 2], False)
    assert _cut_at_eos([5, 6, 7], {2}) == ([5, 6, 7], True)
    assert _cut_at_eos([2], {2}) == ([2], False)


def test_greedy_answer_does_not_depend_on_batch_padding(tiny_model, tiny_tokenizer):
    prompts = _prompts(tiny_tokenizer, ["Tom has 3", "A much longer question about 12 apples and 5 pears"])
    alone = generate(tiny_model, tiny_tokenizer, prompts[:1], max_new_tokens=12, do_sample=False)
    batched = generate(tiny_model, tiny_tokenizer, prompts, max_new_tokens=12, do_sample=False)
    assert alone.answer_ids[0] == batched.answer_ids[0]
    assert batched.prompt_ids[1] == tiny_tokenizer(prompts[1], add_special_tokens=False)["input_ids"]


def test_sampling_groups_follow_their_prompt_and_eos_suppression_forces_length(tiny_model, tiny_tokenizer):
    prompts = _prompts(tiny_tokenizer, ["Tom has 3", "Mia reads 12 pages"])
    torch.manual_seed(0)
    out = generate(tiny_model, tiny_tokenizer, prompts, max_new_tokens=9, do_sample=True,
                   num_return_sequences=3, suppress_eos=True, batch_size=1)
    assert len(out.answer_ids) == 6
    assert out.prompt_ids[:3] == [out.prompt_ids[0]] * 3 and out.prompt_ids[3] != out.prompt_ids[0]
    assert out.lengths == [9] * 6 and all(out.truncated)
    assert tiny_tokenizer.eos_token_id not in sum(out.answer_ids, [])
    # temperature-1 samples of a random model differ from each other
    assert len({tuple(a) for a in out.answer_ids}) > 1


def test_stops_at_eos_when_the_model_emits_it(tiny_model, tiny_tokenizer):
    eos = tiny_tokenizer.eos_token_id
    # a huge eos logit makes eos the greedy choice at the first answer position
    handle = tiny_model.get_output_embeddings().register_forward_hook(
        lambda module, inputs, logits: logits.index_fill(-1, torch.tensor([eos]), 1e4))
    try:
        out = generate(tiny_model, tiny_tokenizer, _prompts(tiny_tokenizer, ["Tom has 3"]),
                       max_new_tokens=5, do_sample=False)
    finally:
        handle.remove()
    assert out.answer_ids == [[eos]] and out.truncated == [False]
    assert answer_texts(tiny_tokenizer, out) == [""]
