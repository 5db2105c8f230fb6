"""Published large training runs (issue 14): what was trained, on what, and what was measured.

Each run: model, accelerator, GPU count, training tokens, sequence length, global batch (tokens),
precision, scale-out bandwidth per GPU (GB/s one way), layout where published, and the published
figures: GPU-hours, TFLOP/s per GPU (model FLOPs) or MFU, and energy (MWh) with how it was
obtained.  ``fit``: used to calibrate fleet.frontier.train_estimate's constants; the others are
held out.  ``assumed`` lists inputs the publication does not state (our assumption, stated).
"""

from __future__ import annotations

RUNS = [
    dict(name="GPT-3 175B", model="gpt-3-175b", gpu="V100-SXM2-32GB", gpus=10_000, tokens=300e9, seq_len=2048,
         batch=3_200_000, precision="fp16", net_gbs=6.25, fit=False, training_stack="deepspeed-pipeline",
         gpu_hours=3_552_000, tflops=24.6, energy_mwh=1287.0,
         energy_note="Patterson et al.: 330 W per processor incl. its server share x 14.8 days x PUE 1.1",
         assumed="network 400 Gb/s per 8-GPU server (Microsoft, 'AI supercomputer' blog 2020); a 2020 framework: "
                 "no interleaved pipeline schedule (published in Narayanan et al. SC'21), ZeRO at most 1 with pipelines",
         source="Patterson et al. 2021, 'Carbon Emissions and Large Neural Network Training', arXiv 2104.10350, "
                "Table 4 (10,000 V100, 14.8 days, 3.14e23 FLOP, 1,287 MWh); Brown et al. 2020 arXiv 2005.14165 "
                "(300B tokens, 2048 context, 3.2M-token batch)"),
    dict(name="OPT-175B", model="opt-175b", gpu="A100-80GB-SXM", gpus=992, tokens=180e9, seq_len=2048,
         batch=2_000_000, precision="fp16", net_gbs=25.0, tp=8, fit=True,
         gpu_hours=None, tflops=147.0, energy_mwh=None,
         assumed="network 8 x 200 Gb/s HDR per 8-GPU node (Azure NDv4)",
         source="Zhang et al. 2022, 'OPT: Open Pre-trained Transformer Language Models', arXiv 2205.01068, "
                "section 2.4 (992 80GB A100, ~147 TFLOP/s per GPU, tensor parallel 8 with FSDP, 2M-token batch)"),
    dict(name="BLOOM-176B", model="bloom-176b", gpu="A100-80GB-SXM", gpus=384, tokens=366e9, seq_len=2048,
         batch=2048 * 2048, precision="bf16", net_gbs=6.25, tp=4, pp=12, dp=8, recompute=True, fit=False,
         training_stack="deepspeed-pipeline",
         gpu_hours=1_082_990, tflops=None, energy_mwh=433.0,
         energy_note="Luccioni et al.: GPU-hours x 400 W TDP (not metered)",
         assumed="none beyond the paper",
         source="Luccioni, Viguier, Ligozat 2022, 'Estimating the Carbon Footprint of BLOOM', arXiv 2211.02001 "
                "(384 A100 80GB, 1,082,990 GPU-hours, 433 MWh); BigScience 2022 arXiv 2211.05100 (TP 4, PP 12, "
                "DP 8, 366B tokens, 2048-sequence batch, 4 x 100 Gb/s Omni-Path per node; Megatron-DeepSpeed with "
                "DeepSpeed pipeline parallelism and ZeRO stage 1)"),
    dict(name="Llama-2-7B", model="llama-2-7b", gpu="A100-80GB-SXM", gpus=2048, tokens=2e12, seq_len=4096,
         batch=4 * 1024 * 1024, precision="bf16", net_gbs=25.0, fit=False,
         gpu_hours=184_320, tflops=None, energy_mwh=184_320 * 0.4 / 1e3,
         energy_note="model card: GPU-hours x 400 W",
         assumed="2048 GPUs (count not published); 200 Gb/s InfiniBand per GPU (Meta RSC)",
         source="Llama 2 model card https://huggingface.co/meta-llama/Llama-2-7b-hf (184,320 GPU-hours A100-80GB, "
                "400 W); Touvron et al. 2023 arXiv 2307.09288 (2T tokens, 4k context, 4M-token batch)"),
    dict(name="Llama-2-13B", model="llama-2-13b", gpu="A100-80GB-SXM", gpus=2048, tokens=2e12, seq_len=4096,
         batch=4 * 1024 * 1024, precision="bf16", net_gbs=25.0, fit=False,
         gpu_hours=368_640, tflops=None, energy_mwh=368_640 * 0.4 / 1e3, energy_note="model card: GPU-hours x 400 W",
         assumed="2048 GPUs (count not published); 200 Gb/s InfiniBand per GPU (Meta RSC)",
         source="Llama 2 model card https://huggingface.co/meta-llama/Llama-2-13b-hf (368,640 GPU-hours)"),
    dict(name="Llama-2-70B", model="llama-2-70b", gpu="A100-80GB-SXM", gpus=2048, tokens=2e12, seq_len=4096,
         batch=4 * 1024 * 1024, precision="bf16", net_gbs=25.0, fit=True,
         gpu_hours=1_720_320, tflops=None, energy_mwh=1_720_320 * 0.4 / 1e3, energy_note="model card: GPU-hours x 400 W",
         assumed="2048 GPUs (count not published); 200 Gb/s InfiniBand per GPU (Meta RSC)",
         source="Llama 2 model card https://huggingface.co/meta-llama/Llama-2-70b-hf (1,720,320 GPU-hours)"),
    dict(name="Llama-3-8B", model="llama-3.1-8b", gpu="H100-SXM", gpus=8192, tokens=15e12, seq_len=8192,
         batch=16 * 1024 * 1024, precision="bf16", net_gbs=50.0, fit=False,
         gpu_hours=1_300_000, tflops=None, energy_mwh=1_300_000 * 0.7 / 1e3, energy_note="model card: GPU-hours x 700 W",
         assumed="8192 GPUs and a 16M-token batch (not published for 8B); 400 Gb/s RoCE per GPU",
         source="Llama 3 model card https://huggingface.co/meta-llama/Meta-Llama-3-8B (1.3M H100-80GB GPU-hours, "
                "700 W, 15T tokens, 8k context); Llama 3.1 8B has the same architecture. Not the Llama 3.1 card's "
                "1.46M: that run adds the 128K long-context stage (Dubey et al. 2024, section 3.4.2), not modelled "
                "here; the 8B and 70B ran on InfiniBand, the 405B on RoCE, both 400 Gb/s per GPU (section 3.3.1)"),
    dict(name="Llama-3-70B", model="llama-3.1-70b", gpu="H100-SXM", gpus=8192, tokens=15e12, seq_len=8192,
         batch=16 * 1024 * 1024, precision="bf16", net_gbs=50.0, fit=False,
         gpu_hours=6_400_000, tflops=None, energy_mwh=6_400_000 * 0.7 / 1e3, energy_note="model card: GPU-hours x 700 W",
         assumed="8192 GPUs and a 16M-token batch (not published for 70B); 400 Gb/s RoCE per GPU",
         source="Llama 3 model card https://huggingface.co/meta-llama/Meta-Llama-3-70B (6.4M GPU-hours for 15T tokens "
                "at 8k context; the Llama 3.1 card's 7.0M adds the long-context stage)"),
    dict(name="Llama-3.1-405B", model="llama-3.1-405b", gpu="H100-SXM", gpus=16_384, tokens=15.6e12, seq_len=8192,
         batch=16 * 1024 * 1024, precision="bf16", net_gbs=50.0, tp=8, pp=16, dp=128, fit=True,
         gpu_hours=30_840_000, tflops=400.0, energy_mwh=30_840_000 * 0.7 / 1e3,
         energy_note="model card: GPU-hours x 700 W",
         assumed="none beyond the paper",
         source="Dubey et al. 2024, 'The Llama 3 Herd of Models', arXiv 2407.21783, Table 4 (16,384 H100, TP 8, "
                "PP 16, DP 128, 400 TFLOP/s per GPU, 41% MFU; 400 Gb/s RoCE); Llama 3.1 model card "
                "https://huggingface.co/meta-llama/Llama-3.1-405B (30.84M GPU-hours, 15.6T tokens)"),
]
