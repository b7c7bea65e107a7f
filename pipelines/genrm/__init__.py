"""The VL-GenRM workflow: `run` (sampling, expert checks, stages 0-2), `config`, `rows` (pairs and bench rows)."""
