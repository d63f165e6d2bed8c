import os
import sys

# make tests/naive.py (the independent brute-force oracle) importable from every test directory
sys.path.insert(0, os.path.dirname(__file__))
