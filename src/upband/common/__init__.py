"""Small helpers every room of upband uses, each with one home.

- :mod:`upband.common.hashing`: SHA-256 of files and bytes.
- :mod:`upband.common.tensorfile`: strict, code-free safetensors reading.
- :mod:`upband.common.jsonnum`: non-finite numbers in strict JSON (one rule for every output).
- :mod:`upband.common.clock`: ``m:ss.sss`` durations.
- :mod:`upband.common.progress`: tqdm bars counted in seconds of audio or in steps.
- :mod:`upband.common.version`: the installed package version.

Nothing here imports torch at module level except :mod:`~upband.common.tensorfile`, so the CLI's
start-up stays light.
"""
