"""SVP (sampling-based visual projection): grounding text for the guided prompt and the S / Delta
scores of guided captions under the plain and grounded prompts."""
