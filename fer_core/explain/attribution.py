"""Where a model looks: Captum attributions of its prediction on the 48x48 face itself.

Every method explains the predicted class of a batch of faces and returns one map per face at
the faces' own 48x48 resolution: the attribution is taken with respect to the grey face in [0, 1]
(the model's resize, normalisation and channel repeat are part of the explained function), the
absolute value is summed over channels and each map is scaled to [0, 1]. Methods (:data:`METHODS`):

- ``integrated_gradients`` (Sundararajan et al., 2017), baseline: the black face;
- ``saliency``: the absolute gradient (Simonyan et al., 2014);
- ``occlusion``: the change of the class score when an 8x8 patch (stride 6) is set to the face's
  mean grey (Zeiler & Fergus, 2014);
- ``grad_cam`` (Selvaraju et al., 2017) on the layer the model registry declares (``cam_layer``),
  bilinearly up-sampled to 48x48.

:func:`internals` reads the models' own evidence: ResMaskingNet's four masks P_S (channel mean,
per stage), a reconstruction net's p', Qin's STN-aligned and super-resolved faces.
"""
from __future__ import annotations

import copy
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..models import get_spec
from ..train.augment import MEAN, STD, faces_to_input
from ..train.losses import logits_of

METHODS = {
    "integrated_gradients": "Integrated Gradients (baseline: the black face)",
    "saliency": "Saliency (absolute gradient)",
    "occlusion": "Occlusion (8x8 patches, stride 6, set to the face's mean grey)",
    "grad_cam": "Grad-CAM (last convolutional stage, up-sampled)",
}
SIZE = 48


def _captum():
    with warnings.catch_warnings():  # captum imports tqdm.auto, which warns without ipywidgets
        warnings.simplefilter("ignore")
        import captum.attr as attr
    return attr


class OnFaces(nn.Module):
    """The model as a function of the grey 48x48 face in [0, 1]: resize, normalisation and channel
    repeat included, logits out (a dict model's ``logits``) as float32. With a ``setup`` the model
    runs in the precision the engine trained and tested it in (bf16 autocast and channels-last on a
    GPU or a CPU with bf16 matrix units): the maps explain the function the test pass scored, at the
    training loop's speed (float32 made ``xception_separable``'s record 400 s on this CPU)."""

    def __init__(self, model: nn.Module, size: int, in_channels: int, setup=None):
        super().__init__()
        self.model, self.size, self.in_channels, self.setup = model, size, in_channels, setup

    @classmethod
    def of(cls, model: nn.Module, setup) -> "OnFaces":
        return cls(model, setup.size, setup.in_channels, setup)

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        x = faces_to_input(faces, self.size, self.in_channels)
        if self.setup is None:
            return logits_of(self.model(x)).float()
        with self.setup.autocast():
            return logits_of(self.model(self.setup.prepare(x))).float()


def forward_batch(setup) -> int:
    """Faces per forward pass of the attributions: 32 on a CPU (measured here: larger batches run
    slower per face, e.g. ``xception_separable`` 106 img/s at 32, 79 at 128), 256 on a GPU."""
    return 256 if setup.device.type == "cuda" else 32


def explainable(model: nn.Module) -> nn.Module:
    """A copy of ``model`` for attribution: eval mode, no in-place activations (they break the
    hooks Captum uses)."""
    model = copy.deepcopy(model).eval()
    for m in model.modules():
        if hasattr(m, "inplace"):
            m.inplace = False
    return model


def _normalise(heat: torch.Tensor) -> np.ndarray:
    """``B x C x 48 x 48`` attributions -> ``B x 48 x 48`` maps in [0, 1] (|.| summed over channels)."""
    heat = heat.detach().float().abs().sum(1)
    peak = heat.flatten(1).amax(1).clamp_min(1e-12)[:, None, None]
    return torch.nan_to_num(heat / peak).cpu().numpy()


def attribute(method: str, model: nn.Module, model_name: str | None, setup, faces: torch.Tensor,
              target: torch.Tensor, *, ig_steps: int = 16, layer: nn.Module | None = None) -> np.ndarray:
    """Maps ``B x 48 x 48`` of one method for ``faces`` (float ``B x 1 x 48 x 48`` in [0, 1]) and
    the classes ``target``. ``model`` must come from :func:`explainable`; Grad-CAM explains
    ``layer``, by default the one the registry declares for ``model_name``."""
    attr = _captum()
    fn = OnFaces.of(model, setup)
    faces = faces.to(setup.device)
    target = target.to(setup.device)
    if method == "integrated_gradients":
        heat = attr.IntegratedGradients(fn).attribute(faces, baselines=torch.zeros_like(faces), target=target,
                                                       n_steps=ig_steps, internal_batch_size=forward_batch(setup))
    elif method == "saliency":
        heat = attr.Saliency(fn).attribute(faces.clone().requires_grad_(True), target=target, abs=True)
    elif method == "occlusion":
        grey = faces.mean(dim=(1, 2, 3), keepdim=True).expand_as(faces).contiguous()
        with torch.no_grad():  # the change of the class score when a patch is greyed out, either way
            heat = attr.Occlusion(fn).attribute(faces, sliding_window_shapes=(1, 8, 8), strides=(1, 6, 6),
                                                baselines=grey, target=target,
                                                perturbations_per_eval=max(1, forward_batch(setup) // len(faces)))
    elif method == "grad_cam":
        layer = layer if layer is not None else get_spec(model_name).cam_module(fn.model)
        cam = attr.LayerGradCam(fn, layer).attribute(faces, target=target, relu_attributions=True)
        heat = F.interpolate(cam.float(), size=faces.shape[-2:], mode="bilinear", align_corners=False)
    else:
        raise KeyError(f"unknown attribution method {method!r}; methods: {list(METHODS)}")
    return _normalise(heat)


def explain_batch(model: nn.Module, model_name: str | None, setup, faces: torch.Tensor, target: torch.Tensor,
                  methods=tuple(METHODS), *, ig_steps: int = 16, batch_size: int | None = None,
                  layer: str | None = None) -> dict[str, np.ndarray]:
    """Every method's maps for ``faces``, in batches of ``batch_size`` faces (default:
    :func:`forward_batch`; ``layer``: a dotted path overriding the registry's Grad-CAM layer)."""
    model = explainable(model)
    batch_size = batch_size or forward_batch(setup)
    cam = model.get_submodule(layer) if layer else None
    out = {}
    for method in methods:
        parts = [attribute(method, model, model_name, setup, faces[i:i + batch_size], target[i:i + batch_size],
                           ig_steps=ig_steps, layer=cam) for i in range(0, len(faces), batch_size)]
        out[method] = np.concatenate(parts)
    return out


@torch.no_grad()
def internals(model: nn.Module, setup, faces: torch.Tensor) -> dict[str, np.ndarray]:
    """What the model itself shows of where it looks, per face, as float arrays: ``mask1`` ...
    ``mask4`` (ResMaskingNet's P_S, averaged over channels, at most 48x48), ``reconstruction``
    (p' at 48x48), ``aligned`` (the STN's face) and ``super_resolved`` (the face x2), the images
    back on the grey scale of the face ([0, 1])."""
    model.eval()
    x = faces_to_input(faces.to(setup.device), setup.size, setup.in_channels)
    with setup.autocast():
        out = model(setup.prepare(x))
        masks = model.forward_masked(setup.prepare(x))[1] if hasattr(model, "forward_masked") else []
    found: dict[str, np.ndarray] = {}
    for k, p_s in enumerate(masks, 1):
        m = p_s.float().mean(1, keepdim=True)
        if m.shape[-1] > SIZE:
            m = F.interpolate(m, size=(SIZE, SIZE), mode="area")
        found[f"mask{k}"] = m[:, 0].cpu().numpy()
    if isinstance(out, dict):
        for key in ("reconstruction", "aligned", "super_resolved"):
            if key in out:
                img = (out[key].float().mean(1, keepdim=True) * STD + MEAN).clamp(0, 1)
                if key == "reconstruction" and img.shape[-1] != SIZE:
                    img = F.interpolate(img, size=(SIZE, SIZE), mode="area")
                found[key] = img[:, 0].cpu().numpy()
    return found


def randomised(model: nn.Module, share: float, seed: int = 0) -> nn.Module:
    """A copy of ``model`` whose top ``share`` of parameterised layers (from the output down) have
    fresh random weights: the cascading randomisation of Adebayo et al. (2018)."""
    model = copy.deepcopy(model)
    layers = [m for m in model.modules() if any(True for _ in m.parameters(recurse=False))]
    k = max(1, round(share * len(layers)))
    torch.manual_seed(seed)
    for m in layers[::-1][:k]:
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
        else:
            for p in m.parameters(recurse=False):
                nn.init.normal_(p, std=0.02)
    return model


def rank_correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman rank correlation of each pair of maps (``N x H x W``), one value per pair."""
    from scipy.stats import spearmanr

    def one(x, y):
        if x.std() > 0 and y.std() > 0:
            return spearmanr(x.ravel(), y.ravel()).statistic
        return 1.0 if x.std() == y.std() == 0 else 0.0  # a flat map against a structured one: changed
    return np.array([one(x, y) for x, y in zip(a, b)])
