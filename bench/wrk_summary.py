"""Prints "req/s p50_ms p99_ms non2xx" from the output of `wrk --latency`
(shared by the bench scripts)."""

import re
import sys

text = open(sys.argv[1]).read()


def ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit]


rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text)[1])
p50 = ms(re.search(r"^\s+50%\s+(\S+)", text, re.M)[1])
p99 = ms(re.search(r"^\s+99%\s+(\S+)", text, re.M)[1])
bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
print(f"{rps:.0f} {p50:.3f} {p99:.3f} {bad[1] if bad else 0}")
