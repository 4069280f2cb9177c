"""The experiment harness and the ``sar`` commands, apart from the library a notebook learns from.

Everything here runs or reports experiments *with* the library in ``sar_lib``: the grid of runs
(``grid``, ``compare``), what is read from it (``analysis``, ``claims`` with ``stats``, ``verdicts``,
``readme_text``, ``ranking``, ``plots``), the shipped adapters (``shipped``), the measurements of cost
and memory (``bench``, ``memory_probe``, ``gpu_check``, ``machine``), the making of the embedded model
(``pretrain``, ``model_card``, ``premises``), the notebook runner (``demo``) and the command line
(``cli``). Nothing in the library imports from here.
"""
