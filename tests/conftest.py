import os
import sys

# Test modules are imported with --import-mode=importlib (test files in different folders may
# share a basename), so shared helper modules (tests/naive.py, tests/*/..._helpers.py) are made
# importable here explicitly.
_HERE = os.path.dirname(os.path.abspath(__file__))
for _d in [_HERE] + sorted(os.path.join(_HERE, x) for x in os.listdir(_HERE)):
    if os.path.isdir(_d) and not os.path.basename(_d).startswith((".", "_")) and _d not in sys.path:
        sys.path.insert(0, _d)
