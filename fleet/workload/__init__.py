"""fleet.workload"""
from fleet.workload.llm import (PRECISION_BYTES, MemoryPlan, TrainCost, TrainMemory, WorkCost,  # noqa: F401
                                decode_cost, kv_bytes_per_token, max_batch, memory_plan,
                                prefill_cost, training_memory, training_step_cost, weight_bytes)
# request traces, synthetic demand, training jobs
from fleet.workload.schema import (REQUEST_COLUMNS, REQUIRED_COLUMNS, canonicalize,  # noqa: F401,E402
                                   validate_requests)
from fleet.workload.traces import (ColumnMapping, TraceWarning, detect_format,  # noqa: F401,E402
                                   iter_trace_chunks, merge, read_trace, sample, scale_rate,
                                   time_shift, trace_stats, window, write_trace)
from fleet.workload.synth import (AZURE_CONV_LOGNORMAL, EmpiricalTokens, LognormalTokens,  # noqa: F401,E402
                                  RateProfile, diurnal_profile, gamma_arrivals, poisson_arrivals,
                                  profile_arrivals, servegen_profile, stretch_trace, synth_trace)
from fleet.workload.jobs import (JOB_COLUMNS, generate_jobs, read_jobs, validate_jobs,  # noqa: F401,E402
                                 write_jobs)
