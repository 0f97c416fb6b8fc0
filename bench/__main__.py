"""Run every workload and print the tables side by side: ``python -m bench``.

``python -m bench w3 w4`` runs a subset. The tables are also written to
``bench/RESULTS.md`` (what the README quotes).
"""

from __future__ import annotations

import importlib
import platform
import sys
from pathlib import Path

import numpy as np

WORKLOADS = {
    "w1": "w1_case_study",
    "w2": "w2_mlp",
    "w3": "w3_overhead",
    "w4": "w4_deep",
    "w5": "w5_gradcheck",
    "w6": "w6_lenet",  # a conv net
    "w7": "w7_higher_order",  # derivatives of derivatives
    "w8": "w8_batchnorm",  # batch norm
}


def machine() -> str:
    parts = [f"Python {platform.python_version()}", f"NumPy {np.__version__}"]
    try:
        import torch

        parts.append(f"PyTorch {torch.__version__} ({torch.get_num_threads()} threads)")
    except ImportError:
        parts.append("PyTorch not installed")
    try:
        from threadpoolctl import threadpool_info

        for pool in threadpool_info():
            if pool.get("user_api") == "blas":
                parts.append(f"NumPy BLAS {pool['internal_api']} {pool.get('version', '')}"
                             f" ({pool['num_threads']} threads)")
                break
    except ImportError:
        pass
    import os

    parts.append(f"{os.cpu_count()} CPU cores, {platform.machine()}")
    return ", ".join(parts)


def main(argv: list) -> int:
    names = argv or list(WORKLOADS)
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        print(f"unknown workload(s) {unknown}; choose from {list(WORKLOADS)}", file=sys.stderr)
        return 2
    out = [f"Machine: {machine()}", ""]
    print(out[0], flush=True)
    for name in names:
        try:
            module = importlib.import_module(f"bench.{WORKLOADS[name]}")
        except ModuleNotFoundError as err:
            print(f"\n{name}: not available ({err})")
            continue
        for table in module.run():
            text = table.markdown()
            print("\n" + text, flush=True)
            out.append(text)
    if not argv:
        Path(__file__).with_name("RESULTS.md").write_text("\n".join(out))
        print("written: bench/RESULTS.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
