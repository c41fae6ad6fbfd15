"""The parts of ``benchmarks/pipeline_bench.py``, the whole pipeline's benchmark.

``run`` holds what the phases share; ``backlog`` (producer and limits), ``drain`` and
``live`` (freshness) measure, each with the helpers it needs (``limits``, ``groupwatch``,
``freshness``, ``procs``); ``records`` types the report; ``judge`` compares it with the
targets; ``table`` prints it and ``chart`` draws it; ``environment`` describes the machine.
"""
