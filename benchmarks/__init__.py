"""skvae's benchmarks: run each as ``python -m benchmarks.<name>`` from the repository root.

``benchmarks/RESULTS.md`` indexes which script answers which question,
with its command and its latest table.
"""

import os

# torch's OpenMP threads busy-wait by default; on a shared 2-core machine
# that slows training ~30x whenever another process holds a core. Set here,
# as ``python -m benchmarks.<name>`` imports this package before the script
# imports torch, whose OpenMP runtime reads the variable when it loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
