"""Hardware that was never measured is predicted from its spec sheet and the shared device
constants: nothing in the model may name a GPU, and the predictions follow the physics of the
catalog columns (memory-bound decode tracks memory bandwidth; power stays inside the envelope)."""

from __future__ import annotations

import re

import pytest

from fleet.catalog import accelerators, get_accelerator, get_model
from fleet.errors import CatalogError, ConfigurationError
from fleet.frontier import make_replica
from fleet.frontier.steady import steady_state
from fleet.workload.llm import weight_bytes

MODEL = "llama-3.1-8b"


def _predictable():
    out = []
    for name in accelerators()["name"]:
        try:
            rep = make_replica(MODEL, name, 1, "bf16", calibrated=True)
        except (ConfigurationError, CatalogError):   # does not fit, or no bf16 tensor cores
            continue
        out.append((name, rep))
    return out


PREDICTABLE = _predictable()


def test_most_of_the_catalog_is_predictable():
    names = {n for n, _ in PREDICTABLE}
    assert {"H100-SXM", "H200-SXM", "B200", "MI300X", "A100-80GB-SXM", "L40S", "L4"} <= names


@pytest.mark.parametrize("name,rep", PREDICTABLE, ids=[n for n, _ in PREDICTABLE])
def test_prediction_is_inside_the_physical_envelope(name, rep):
    spec = get_accelerator(name)
    s = steady_state(rep, batch=1, input_tokens=512, output_tokens=256)
    itl = float(s.itl_s)
    # roofline floor: one decode iteration must at least stream the weights at peak bandwidth
    floor = weight_bytes(get_model(MODEL), "bf16") / spec.memory_bw_bytes_per_s
    assert floor < itl < 20 * floor
    assert 0.0 < float(s.avg_power_w) <= spec.power_max_w + 1e-9
    if spec.idle_w:
        assert float(s.avg_power_w) > spec.idle_w          # a busy GPU draws more than an idle one
    assert float(s.energy_per_output_token_j) == pytest.approx(float(s.avg_power_w) * itl, rel=1e-9)


def test_memory_bound_decode_throughput_follows_memory_bandwidth():
    """At a small batch decode streams the weights: the throughput order of never-measured parts
    is their bandwidth order, a prediction made from spec sheets alone."""
    rows = []
    for name, rep in PREDICTABLE:
        s = steady_state(rep, batch=4, input_tokens=256, output_tokens=256)
        rows.append((get_accelerator(name).memory_bw_gbs, float(s.output_tokens_per_s), name))
    by_bw = [n for _, _, n in sorted(rows)]
    by_tput = [n for _, _, n in sorted(rows, key=lambda r: (r[1], r[2]))]   # equal bandwidths tie, by name
    assert by_bw == by_tput


MODEL_MODULES = ["fleet/hardware/energy.py", "fleet/hardware/dvfs.py", "fleet/hardware/accelerator.py",
                 "fleet/frontier/build.py", "fleet/frontier/steady.py", "fleet/frontier/work.py",
                 "fleet/frontier/frontier.py", "fleet/workload/llm.py"]


@pytest.mark.parametrize("path", MODEL_MODULES)
def test_no_gpu_is_special_cased_in_the_model(path, repo_root):
    """Only catalog columns distinguish GPUs: the model's code names none of them (comments and
    docstrings may cite one as an example)."""
    import ast
    import io
    import tokenize

    src = (repo_root / path).read_text(encoding="utf-8")
    doc_lines = set()
    for node in ast.walk(ast.parse(src)):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(getattr(body[0], "value", None), ast.Constant) \
                and isinstance(body[0].value.value, str):
            doc_lines.update(range(body[0].lineno, body[0].end_lineno + 1))
    names = set()
    for n in accelerators()["name"]:
        names.add(n.lower())
        names.update(a.strip().lower() for a in get_accelerator(n).aliases)
    pattern = re.compile(r"\b(" + "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True)
                                            if len(n) >= 3) + r")\b", re.I)
    hits = []
    for tok in tokenize.generate_tokens(io.StringIO(src).readline):
        if tok.type != tokenize.STRING or tok.start[0] in doc_lines:
            continue
        m = pattern.search(tok.string)
        if m:
            hits.append(f"{path}:{tok.start[0]}: {tok.string[:60]}")
    assert hits == []
