"""`mmpref demo`: generate pairs from the shipped shapes base, train Diffusion-DPO, evaluate the gain.

`mmpref.demo.run.run_demo` is the whole demo from Python; `mmpref.demo.prompt_sets` holds the shapes
prompt sets (this package imports nothing heavy, so the prompt-set registry can import it).
"""
