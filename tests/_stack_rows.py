"""Published serving measurements the serving stacks are fitted on and tested against
(``fleet/catalog/serving_stacks.yaml``; :mod:`fleet.frontier.stack_fit`).  Numbers copied from the
cited tables; nothing here is modelled.

TensorRT-LLM (stack ``tensorrt-llm-1.0``): NVIDIA TensorRT-LLM "Performance Overview",
docs/source/performance/perf-overview.md at commit 00f37686aa854010d68bcbd0f4ab000221541ca6 (v1.0,
PyTorch backend, ``trtllm-bench throughput``, every request queued at once, ISL/OSL fixed, ModelOpt
FP8 checkpoints nvidia/Llama-3.1-8B-Instruct-FP8, nvidia/Llama-3.3-70B-Instruct-FP8,
nvidia/Llama-3.1-405B-Instruct-FP8, whose KV cache is FP8 too): "Total Output Throughput
(tokens/sec)" on DGX H100 (H100 SXM 80GB) and DGX H200 (H200 SXM 141GB).  The batch limit is the
LLM API's default ``max_batch_size`` 2048 (tensorrt_llm/llmapi/llm_args.py); the running batch
is the largest that fits the KV cache at steady-state occupancy up to that.  Fit on the H100 rows,
H200 rows held out.

vLLM of 2023 (stack ``vllm-splitwise-2023``): the Splitwise (Patel et al., ISCA 2024) profiles
shipped with SplitwiseSim, github.com/Mutinifni/splitwise-sim data/perf_model.csv at commit
8f99e7dc9b407f4ce2488d03dd44c0b8b946dab0: median over the five repeats of prompt_time and
token_time (ms) for 128 output tokens, fp16, DGX-A100 (A100 80GB SXM) and DGX-H100 (H100 SXM);
``average_power`` (share of TDP per GPU over the request; published for DGX-A100 only).  Rows
kept: batch 1 at prompts up to 4096 tokens, and prompt 512 at batches up to 16 (the larger
batches and the 8192-token prompt show profiling artefacts: a batch-64 prefill faster than
batch 32, power falling to 18% of TDP).  Fit on the DGX-A100 rows, DGX-H100 rows held out.
"""

from fleet.frontier.stack_fit import StepRow, ThroughputRow

TRT_PERF = ("NVIDIA TensorRT-LLM perf-overview.md (v1.0), commit 00f37686aa854010d68bcbd0f4ab000221541ca6, "
            "table '{}', Total Output Throughput (tokens/sec)")
TRT_8B = TRT_PERF.format("Llama 3.1 8B")
TRT_70B = TRT_PERF.format("Llama 3.3 70B")
TRT_405B = TRT_PERF.format("Llama 3.1 405B")
SPLITWISE = ("Patel et al., Splitwise, ISCA 2024; github.com/Mutinifni/splitwise-sim data/perf_model.csv, "
             "commit 8f99e7dc9b407f4ce2488d03dd44c0b8b946dab0 (median of 5 repeats)")

#: TensorRT-LLM 1.0 offline throughput (output tokens/s), FP8 weights and KV cache
TRTLLM_ROWS = [
    ThroughputRow("llama-3.1-8b", "H100-SXM", 1, "fp8", "fp8", 128, 128, 28312, source=TRT_8B),
    ThroughputRow("llama-3.1-8b", "H200-SXM", 1, "fp8", "fp8", 128, 128, 27911, source=TRT_8B),
    ThroughputRow("llama-3.1-8b", "H100-SXM", 1, "fp8", "fp8", 128, 2048, 22714, source=TRT_8B),
    ThroughputRow("llama-3.1-8b", "H200-SXM", 1, "fp8", "fp8", 128, 2048, 26221, source=TRT_8B),
    ThroughputRow("llama-3.1-8b", "H100-SXM", 1, "fp8", "fp8", 128, 4096, 14325, source=TRT_8B),
    ThroughputRow("llama-3.1-8b", "H200-SXM", 1, "fp8", "fp8", 128, 4096, 18027, source=TRT_8B),
    ThroughputRow("llama-3.1-8b", "H100-SXM", 1, "fp8", "fp8", 500, 2000, 17660, source=TRT_8B),
    ThroughputRow("llama-3.1-8b", "H200-SXM", 1, "fp8", "fp8", 500, 2000, 20770, source=TRT_8B),
    ThroughputRow("llama-3.1-8b", "H100-SXM", 1, "fp8", "fp8", 1000, 1000, 15220, source=TRT_8B),
    ThroughputRow("llama-3.1-8b", "H200-SXM", 1, "fp8", "fp8", 1000, 1000, 17744, source=TRT_8B),
    ThroughputRow("llama-3.1-8b", "H100-SXM", 1, "fp8", "fp8", 1000, 2000, 13899, source=TRT_8B),
    ThroughputRow("llama-3.1-8b", "H200-SXM", 1, "fp8", "fp8", 1000, 2000, 16828, source=TRT_8B),
    ThroughputRow("llama-3.1-8b", "H100-SXM", 1, "fp8", "fp8", 2048, 128, 3450, source=TRT_8B),
    ThroughputRow("llama-3.1-8b", "H200-SXM", 1, "fp8", "fp8", 2048, 128, 3538, source=TRT_8B),
    ThroughputRow("llama-3.1-8b", "H100-SXM", 1, "fp8", "fp8", 2048, 2048, 9305, source=TRT_8B),
    ThroughputRow("llama-3.1-8b", "H200-SXM", 1, "fp8", "fp8", 2048, 2048, 12194, source=TRT_8B),
    ThroughputRow("llama-3.1-8b", "H100-SXM", 1, "fp8", "fp8", 5000, 500, 3459, source=TRT_8B),
    ThroughputRow("llama-3.1-8b", "H200-SXM", 1, "fp8", "fp8", 5000, 500, 3902, source=TRT_8B),
    ThroughputRow("llama-3.1-8b", "H100-SXM", 1, "fp8", "fp8", 20000, 2000, 1351, source=TRT_8B),
    ThroughputRow("llama-3.1-8b", "H200-SXM", 1, "fp8", "fp8", 20000, 2000, 1804, source=TRT_8B),
    ThroughputRow("llama-3.3-70b", "H100-SXM", 2, "fp8", "fp8", 128, 128, 6378, source=TRT_70B),
    ThroughputRow("llama-3.3-70b", "H200-SXM", 1, "fp8", "fp8", 128, 128, 3803, source=TRT_70B),
    ThroughputRow("llama-3.3-70b", "H100-SXM", 2, "fp8", "fp8", 128, 2048, 6651, source=TRT_70B),
    ThroughputRow("llama-3.3-70b", "H200-SXM", 1, "fp8", "fp8", 128, 2048, 4336, source=TRT_70B),
    ThroughputRow("llama-3.3-70b", "H100-SXM", 2, "fp8", "fp8", 128, 4096, 4199, source=TRT_70B),
    ThroughputRow("llama-3.3-70b", "H200-SXM", 1, "fp8", "fp8", 128, 4096, 2872, source=TRT_70B),
    ThroughputRow("llama-3.3-70b", "H100-SXM", 2, "fp8", "fp8", 500, 2000, 5222, source=TRT_70B),
    ThroughputRow("llama-3.3-70b", "H200-SXM", 1, "fp8", "fp8", 500, 2000, 3666, source=TRT_70B),
    ThroughputRow("llama-3.3-70b", "H100-SXM", 2, "fp8", "fp8", 1000, 1000, 4205, source=TRT_70B),
    ThroughputRow("llama-3.3-70b", "H200-SXM", 1, "fp8", "fp8", 1000, 1000, 2909, source=TRT_70B),
    ThroughputRow("llama-3.3-70b", "H100-SXM", 2, "fp8", "fp8", 1000, 2000, 4146, source=TRT_70B),
    ThroughputRow("llama-3.3-70b", "H200-SXM", 1, "fp8", "fp8", 1000, 2000, 2994, source=TRT_70B),
    ThroughputRow("llama-3.3-70b", "H100-SXM", 2, "fp8", "fp8", 2048, 128, 762, source=TRT_70B),
    ThroughputRow("llama-3.3-70b", "H200-SXM", 1, "fp8", "fp8", 2048, 128, 442, source=TRT_70B),
    ThroughputRow("llama-3.3-70b", "H100-SXM", 2, "fp8", "fp8", 2048, 2048, 3082, source=TRT_70B),
    ThroughputRow("llama-3.3-70b", "H200-SXM", 1, "fp8", "fp8", 2048, 2048, 2003, source=TRT_70B),
    ThroughputRow("llama-3.3-70b", "H100-SXM", 2, "fp8", "fp8", 5000, 500, 898, source=TRT_70B),
    ThroughputRow("llama-3.3-70b", "H200-SXM", 1, "fp8", "fp8", 5000, 500, 566, source=TRT_70B),
    ThroughputRow("llama-3.3-70b", "H100-SXM", 2, "fp8", "fp8", 20000, 2000, 437, source=TRT_70B),
    ThroughputRow("llama-3.3-70b", "H200-SXM", 1, "fp8", "fp8", 20000, 2000, 283, source=TRT_70B),
    ThroughputRow("llama-3.1-405b", "H100-SXM", 8, "fp8", "fp8", 128, 128, 3627, source=TRT_405B),
    ThroughputRow("llama-3.1-405b", "H200-SXM", 8, "fp8", "fp8", 128, 128, 3814, source=TRT_405B),
    ThroughputRow("llama-3.1-405b", "H100-SXM", 8, "fp8", "fp8", 128, 2048, 4340, source=TRT_405B),
    ThroughputRow("llama-3.1-405b", "H200-SXM", 8, "fp8", "fp8", 128, 2048, 5348, source=TRT_405B),
    ThroughputRow("llama-3.1-405b", "H100-SXM", 8, "fp8", "fp8", 128, 4096, 3116, source=TRT_405B),
    ThroughputRow("llama-3.1-405b", "H200-SXM", 8, "fp8", "fp8", 128, 4096, 4741, source=TRT_405B),
    ThroughputRow("llama-3.1-405b", "H100-SXM", 8, "fp8", "fp8", 500, 2000, 3994, source=TRT_405B),
    ThroughputRow("llama-3.1-405b", "H200-SXM", 8, "fp8", "fp8", 500, 2000, 4724, source=TRT_405B),
    ThroughputRow("llama-3.1-405b", "H100-SXM", 8, "fp8", "fp8", 1000, 1000, 2919, source=TRT_405B),
    ThroughputRow("llama-3.1-405b", "H200-SXM", 8, "fp8", "fp8", 1000, 1000, 3330, source=TRT_405B),
    ThroughputRow("llama-3.1-405b", "H100-SXM", 8, "fp8", "fp8", 1000, 2000, 2895, source=TRT_405B),
    ThroughputRow("llama-3.1-405b", "H200-SXM", 8, "fp8", "fp8", 1000, 2000, 3722, source=TRT_405B),
    ThroughputRow("llama-3.1-405b", "H100-SXM", 8, "fp8", "fp8", 2048, 128, 453, source=TRT_405B),
    ThroughputRow("llama-3.1-405b", "H200-SXM", 8, "fp8", "fp8", 2048, 128, 456, source=TRT_405B),
    ThroughputRow("llama-3.1-405b", "H100-SXM", 8, "fp8", "fp8", 2048, 2048, 2296, source=TRT_405B),
    ThroughputRow("llama-3.1-405b", "H200-SXM", 8, "fp8", "fp8", 2048, 2048, 2948, source=TRT_405B),
    ThroughputRow("llama-3.1-405b", "H100-SXM", 8, "fp8", "fp8", 5000, 500, 610, source=TRT_405B),
    ThroughputRow("llama-3.1-405b", "H200-SXM", 8, "fp8", "fp8", 5000, 500, 650, source=TRT_405B),
    ThroughputRow("llama-3.1-405b", "H100-SXM", 8, "fp8", "fp8", 20000, 2000, 345, source=TRT_405B),
    ThroughputRow("llama-3.1-405b", "H200-SXM", 8, "fp8", "fp8", 20000, 2000, 505, source=TRT_405B),
]
TRTLLM_FIT_GPU = "H100-SXM"       # fitted on these rows; the H200-SXM rows are held out

#: vLLM (late 2023, eager, fp16) step profiles from Splitwise
SPLITWISE_ROWS = [
    StepRow("bloom-176b", "A100-80GB-SXM", 8, "fp16", 128, 1, 128, 79.7, 47.61, 0.637, source=SPLITWISE),
    StepRow("bloom-176b", "A100-80GB-SXM", 8, "fp16", 256, 1, 128, 99.2, 47.71, 0.636, source=SPLITWISE),
    StepRow("bloom-176b", "A100-80GB-SXM", 8, "fp16", 512, 1, 128, 173.8, 48.76, 0.635, source=SPLITWISE),
    StepRow("bloom-176b", "A100-80GB-SXM", 8, "fp16", 512, 2, 128, 286.8, 49.99, 0.63, source=SPLITWISE),
    StepRow("bloom-176b", "A100-80GB-SXM", 8, "fp16", 512, 4, 128, 528.6, 51.0, 0.632, source=SPLITWISE),
    StepRow("bloom-176b", "A100-80GB-SXM", 8, "fp16", 512, 8, 128, 1322.2, 52.95, 0.643, source=SPLITWISE),
    StepRow("bloom-176b", "A100-80GB-SXM", 8, "fp16", 512, 16, 128, 3510.1, 57.34, 0.656, source=SPLITWISE),
    StepRow("bloom-176b", "A100-80GB-SXM", 8, "fp16", 1024, 1, 128, 289.2, 48.8, 0.624, source=SPLITWISE),
    StepRow("bloom-176b", "A100-80GB-SXM", 8, "fp16", 2048, 1, 128, 540.4, 49.36, 0.614, source=SPLITWISE),
    StepRow("bloom-176b", "A100-80GB-SXM", 8, "fp16", 4096, 1, 128, 1348.2, 50.2, 0.581, source=SPLITWISE),
    StepRow("bloom-176b", "H100-SXM", 8, "fp16", 128, 1, 128, 48.3, 35.74, None, source=SPLITWISE),
    StepRow("bloom-176b", "H100-SXM", 8, "fp16", 256, 1, 128, 51.2, 36.15, None, source=SPLITWISE),
    StepRow("bloom-176b", "H100-SXM", 8, "fp16", 512, 1, 128, 75.5, 36.11, None, source=SPLITWISE),
    StepRow("bloom-176b", "H100-SXM", 8, "fp16", 512, 2, 128, 131.3, 36.91, None, source=SPLITWISE),
    StepRow("bloom-176b", "H100-SXM", 8, "fp16", 512, 4, 128, 238.8, 38.06, None, source=SPLITWISE),
    StepRow("bloom-176b", "H100-SXM", 8, "fp16", 512, 8, 128, 625.0, 38.14, None, source=SPLITWISE),
    StepRow("bloom-176b", "H100-SXM", 8, "fp16", 512, 16, 128, 1313.3, 40.64, None, source=SPLITWISE),
    StepRow("bloom-176b", "H100-SXM", 8, "fp16", 1024, 1, 128, 132.6, 35.48, None, source=SPLITWISE),
    StepRow("bloom-176b", "H100-SXM", 8, "fp16", 2048, 1, 128, 253.1, 35.72, None, source=SPLITWISE),
    StepRow("bloom-176b", "H100-SXM", 8, "fp16", 4096, 1, 128, 688.7, 36.94, None, source=SPLITWISE),
    StepRow("llama-2-70b", "A100-80GB-SXM", 2, "fp16", 128, 1, 128, 81.1, 53.68, 0.736, source=SPLITWISE),
    StepRow("llama-2-70b", "A100-80GB-SXM", 2, "fp16", 256, 1, 128, 112.9, 54.1, 0.737, source=SPLITWISE),
    StepRow("llama-2-70b", "A100-80GB-SXM", 2, "fp16", 512, 1, 128, 196.9, 54.86, 0.736, source=SPLITWISE),
    StepRow("llama-2-70b", "A100-80GB-SXM", 2, "fp16", 512, 2, 128, 416.5, 59.92, 0.745, source=SPLITWISE),
    StepRow("llama-2-70b", "A100-80GB-SXM", 2, "fp16", 512, 4, 128, 845.4, 60.52, 0.741, source=SPLITWISE),
    StepRow("llama-2-70b", "A100-80GB-SXM", 2, "fp16", 512, 8, 128, 1596.8, 61.69, 0.762, source=SPLITWISE),
    StepRow("llama-2-70b", "A100-80GB-SXM", 2, "fp16", 512, 16, 128, 3238.8, 65.46, 0.794, source=SPLITWISE),
    StepRow("llama-2-70b", "A100-80GB-SXM", 2, "fp16", 1024, 1, 128, 377.1, 54.77, 0.726, source=SPLITWISE),
    StepRow("llama-2-70b", "A100-80GB-SXM", 2, "fp16", 2048, 1, 128, 688.1, 54.89, 0.715, source=SPLITWISE),
    StepRow("llama-2-70b", "A100-80GB-SXM", 2, "fp16", 4096, 1, 128, 1485.3, 55.87, 0.679, source=SPLITWISE),
    StepRow("llama-2-70b", "A100-80GB-SXM", 4, "fp16", 128, 1, 128, 63.7, 42.42, 0.594, source=SPLITWISE),
    StepRow("llama-2-70b", "A100-80GB-SXM", 4, "fp16", 256, 1, 128, 78.6, 42.18, 0.59, source=SPLITWISE),
    StepRow("llama-2-70b", "A100-80GB-SXM", 4, "fp16", 512, 1, 128, 127.0, 44.99, 0.599, source=SPLITWISE),
    StepRow("llama-2-70b", "A100-80GB-SXM", 4, "fp16", 512, 2, 128, 253.9, 45.0, 0.607, source=SPLITWISE),
    StepRow("llama-2-70b", "A100-80GB-SXM", 4, "fp16", 512, 4, 128, 571.4, 45.09, 0.604, source=SPLITWISE),
    StepRow("llama-2-70b", "A100-80GB-SXM", 4, "fp16", 512, 8, 128, 1233.0, 45.8, 0.615, source=SPLITWISE),
    StepRow("llama-2-70b", "A100-80GB-SXM", 4, "fp16", 512, 16, 128, 2892.6, 48.52, 0.642, source=SPLITWISE),
    StepRow("llama-2-70b", "A100-80GB-SXM", 4, "fp16", 1024, 1, 128, 227.1, 44.95, 0.586, source=SPLITWISE),
    StepRow("llama-2-70b", "A100-80GB-SXM", 4, "fp16", 2048, 1, 128, 403.3, 44.98, 0.589, source=SPLITWISE),
    StepRow("llama-2-70b", "A100-80GB-SXM", 4, "fp16", 4096, 1, 128, 965.2, 46.37, 0.517, source=SPLITWISE),
    StepRow("llama-2-70b", "A100-80GB-SXM", 8, "fp16", 128, 1, 128, 65.3, 43.03, 0.435, source=SPLITWISE),
    StepRow("llama-2-70b", "A100-80GB-SXM", 8, "fp16", 256, 1, 128, 66.8, 43.48, 0.43, source=SPLITWISE),
    StepRow("llama-2-70b", "A100-80GB-SXM", 8, "fp16", 512, 1, 128, 94.3, 44.85, 0.435, source=SPLITWISE),
    StepRow("llama-2-70b", "A100-80GB-SXM", 8, "fp16", 512, 2, 128, 165.9, 44.56, 0.428, source=SPLITWISE),
    StepRow("llama-2-70b", "A100-80GB-SXM", 8, "fp16", 512, 4, 128, 292.3, 45.79, 0.438, source=SPLITWISE),
    StepRow("llama-2-70b", "A100-80GB-SXM", 8, "fp16", 512, 8, 128, 767.6, 46.47, 0.434, source=SPLITWISE),
    StepRow("llama-2-70b", "A100-80GB-SXM", 8, "fp16", 512, 16, 128, 2084.4, 50.44, 0.458, source=SPLITWISE),
    StepRow("llama-2-70b", "A100-80GB-SXM", 8, "fp16", 1024, 1, 128, 154.5, 44.97, 0.43, source=SPLITWISE),
    StepRow("llama-2-70b", "A100-80GB-SXM", 8, "fp16", 2048, 1, 128, 274.2, 45.44, 0.437, source=SPLITWISE),
    StepRow("llama-2-70b", "A100-80GB-SXM", 8, "fp16", 4096, 1, 128, 661.2, 46.48, 0.387, source=SPLITWISE),
    StepRow("llama-2-70b", "H100-SXM", 2, "fp16", 128, 1, 128, 48.3, 37.24, None, source=SPLITWISE),
    StepRow("llama-2-70b", "H100-SXM", 2, "fp16", 256, 1, 128, 51.8, 37.84, None, source=SPLITWISE),
    StepRow("llama-2-70b", "H100-SXM", 2, "fp16", 512, 1, 128, 83.8, 37.0, None, source=SPLITWISE),
    StepRow("llama-2-70b", "H100-SXM", 2, "fp16", 512, 2, 128, 155.8, 37.39, None, source=SPLITWISE),
    StepRow("llama-2-70b", "H100-SXM", 2, "fp16", 512, 4, 128, 299.8, 39.98, None, source=SPLITWISE),
    StepRow("llama-2-70b", "H100-SXM", 2, "fp16", 512, 8, 128, 606.0, 40.4, None, source=SPLITWISE),
    StepRow("llama-2-70b", "H100-SXM", 2, "fp16", 512, 16, 128, 1192.0, 41.97, None, source=SPLITWISE),
    StepRow("llama-2-70b", "H100-SXM", 2, "fp16", 1024, 1, 128, 158.0, 37.39, None, source=SPLITWISE),
    StepRow("llama-2-70b", "H100-SXM", 2, "fp16", 2048, 1, 128, 310.3, 37.37, None, source=SPLITWISE),
    StepRow("llama-2-70b", "H100-SXM", 2, "fp16", 4096, 1, 128, 642.7, 37.54, None, source=SPLITWISE),
    StepRow("llama-2-70b", "H100-SXM", 4, "fp16", 128, 1, 128, 49.1, 28.36, None, source=SPLITWISE),
    StepRow("llama-2-70b", "H100-SXM", 4, "fp16", 256, 1, 128, 51.0, 30.03, None, source=SPLITWISE),
    StepRow("llama-2-70b", "H100-SXM", 4, "fp16", 512, 1, 128, 59.6, 29.72, None, source=SPLITWISE),
    StepRow("llama-2-70b", "H100-SXM", 4, "fp16", 512, 2, 128, 103.6, 29.98, None, source=SPLITWISE),
    StepRow("llama-2-70b", "H100-SXM", 4, "fp16", 512, 4, 128, 195.3, 29.92, None, source=SPLITWISE),
    StepRow("llama-2-70b", "H100-SXM", 4, "fp16", 512, 8, 128, 442.2, 31.44, None, source=SPLITWISE),
    StepRow("llama-2-70b", "H100-SXM", 4, "fp16", 512, 16, 128, 874.3, 32.84, None, source=SPLITWISE),
    StepRow("llama-2-70b", "H100-SXM", 4, "fp16", 1024, 1, 128, 105.6, 29.44, None, source=SPLITWISE),
    StepRow("llama-2-70b", "H100-SXM", 4, "fp16", 2048, 1, 128, 200.7, 29.82, None, source=SPLITWISE),
    StepRow("llama-2-70b", "H100-SXM", 4, "fp16", 4096, 1, 128, 463.5, 29.58, None, source=SPLITWISE),
    StepRow("llama-2-70b", "H100-SXM", 8, "fp16", 128, 1, 128, 58.2, 29.87, None, source=SPLITWISE),
    StepRow("llama-2-70b", "H100-SXM", 8, "fp16", 256, 1, 128, 51.7, 28.27, None, source=SPLITWISE),
    StepRow("llama-2-70b", "H100-SXM", 8, "fp16", 512, 1, 128, 53.4, 29.76, None, source=SPLITWISE),
    StepRow("llama-2-70b", "H100-SXM", 8, "fp16", 512, 2, 128, 76.9, 30.26, None, source=SPLITWISE),
    StepRow("llama-2-70b", "H100-SXM", 8, "fp16", 512, 4, 128, 132.6, 31.79, None, source=SPLITWISE),
    StepRow("llama-2-70b", "H100-SXM", 8, "fp16", 512, 8, 128, 371.6, 32.5, None, source=SPLITWISE),
    StepRow("llama-2-70b", "H100-SXM", 8, "fp16", 512, 16, 128, 811.9, 34.17, None, source=SPLITWISE),
    StepRow("llama-2-70b", "H100-SXM", 8, "fp16", 1024, 1, 128, 77.9, 29.74, None, source=SPLITWISE),
    StepRow("llama-2-70b", "H100-SXM", 8, "fp16", 2048, 1, 128, 136.8, 31.05, None, source=SPLITWISE),
    StepRow("llama-2-70b", "H100-SXM", 8, "fp16", 4096, 1, 128, 390.3, 30.56, None, source=SPLITWISE),
]
SPLITWISE_FIT_GPU = "A100-80GB-SXM"   # fitted on these rows; the DGX-H100 rows are held out
