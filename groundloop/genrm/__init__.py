"""VL-GenRM (generative reward model): expert checks of a response's claims (`experts`),
preference pairs (`pairing`), critiques and verdicts (`critique`), training objectives and
rejection (`losses`), the model code (`judge`), grounded attention, Best-of-N and the bench."""
