"""fleet.workload"""
from fleet.workload.llm import (PRECISION_BYTES, MemoryPlan, TrainCost, TrainMemory, WorkCost,  # noqa: F401
                                decode_cost, kv_bytes_per_token, max_batch, memory_plan,
                                prefill_cost, training_memory, training_step_cost, weight_bytes)
