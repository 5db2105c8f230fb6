"""Upper bounds on the size of a request, checked before anything is allocated.

Without bounds a typo (``gpus: 10000000``, ``rate: 1e7``) hangs the machine or exhausts its memory
instead of failing.  Each limit is the largest request that finishes in minutes and fits in a few
GB on a laptop-class machine (2 cores, 8 GB); the error says how large the request would be and
what to change.  They are engineering limits (MODELLED costs, measured on the development machine
as noted), not physical ones: raise one here if a bigger machine needs it.
"""

from __future__ import annotations

#: requests in one synthetic or scaled trace, or in a request-level simulation.  A request is 5
#: columns of 8 bytes in memory (about 1 GB at 20 million) and a few events in the engine (the
#: default scenario simulates ~0.5 million requests in seconds); longer demand belongs to
#: ``simulation.mode: fluid`` (hourly steps), which does not generate every request.
MAX_REQUESTS = 20_000_000

#: training jobs in one table (generated or simulated): each job is a SimPy process with its own
#: step, checkpoint and failure events, so the simulation's cost grows with the job count.
MAX_JOBS = 100_000

#: training jobs drawn by the generator alone (``fleet trace jobs``, :func:`fleet.workload.jobs.generate_jobs`):
#: vectorised, ~1 s and ~100 MB of CSV per million jobs; the fit checks draw a million.
MAX_GENERATED_JOBS = 2_000_000

#: GPUs in a simulated fleet: the power tree has a node per GPU (building it costs ~0.2 ms per
#: GPU measured, 20 s at this bound), and 100,000 is the scale of the largest clusters announced
#: in 2024.
MAX_FLEET_GPUS = 100_000

#: ``max_batch`` of a served model: the serving profile tabulates every batch size 1..max_batch
#: (measured ~0.4 ms per size: 38 s at 100,000).  4,096 concurrent sequences is 16x vLLM's default
#: ``max_num_seqs`` (256); the KV cache limits the batch below this on every catalogued GPU at
#: the usual context lengths.
MAX_BATCH = 4096

#: GPUs in one ``fleet estimate`` replica (serving: the tensor-parallel group) - a scale-up domain
#: larger than an NVL72 rack (72 GPUs) is not a replica.
MAX_REPLICA_GPUS = 72

#: GPUs of one training run in ``fleet estimate --train``: as :data:`MAX_FLEET_GPUS`.
MAX_TRAINING_GPUS = MAX_FLEET_GPUS

#: power caps of ``fleet frontier --caps``: a 1 W step over the widest catalogued cap range
#: (a few hundred W) needs fewer; each cap is a full model evaluation (1,001 caps took 14 s on
#: the 2-core development machine, measured).
MAX_CAPS = 1001

#: points of a resampled grid signal (``fleet grid inspect --resample``): one year at 1 s is 31.5
#: million; 10 million float64 points is 80 MB per array.
MAX_SIGNAL_POINTS = 10_000_000

#: nesting depth of a scenario's YAML (a scenario needs about 6 levels); deeper documents are
#: refused before the parser's recursion can overflow the interpreter's stack.
MAX_YAML_DEPTH = 64

#: training sequence length (tokens) of ``fleet estimate --train``: 1 Mi tokens, beyond every
#: catalogued model's context.
MAX_SEQ_LEN = 1 << 20
