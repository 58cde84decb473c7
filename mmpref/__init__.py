"""mmpref: preference alignment for diffusion and multimodal models.

Sample a model, score the samples, pair them, train on the pairs: each move has one home
(pipelines, reward_models, objectives, methods), and modality adapters let one objective serve
images, audio, MLLMs and video alike.
"""

__version__ = "0.1.0"
