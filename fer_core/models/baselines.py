"""The baselines of the papers' tables, taken from torchvision, pytorchcv and timm unchanged
except for the head (the class count) and, for pytorchcv's fixed 7x7 final pooling, an adaptive
pooling so that the smoke profile's smaller inputs work. All take 3-channel input (grey faces
repeated), from scratch unless ``model.weights`` names a local file."""
from __future__ import annotations

from functools import partial

from torch import nn

from . import register


def _torchvision(name: str, num_classes: int = 7, **kwargs) -> nn.Module:
    import torchvision.models as tvm

    return getattr(tvm, name)(weights=None, num_classes=num_classes, **kwargs)


def _pytorchcv(name: str, num_classes: int = 7) -> nn.Module:
    from pytorchcv.model_provider import get_model

    model = get_model(name, pretrained=False, num_classes=num_classes)
    if hasattr(model, "features") and hasattr(model.features, "final_pool"):
        model.features.final_pool = nn.AdaptiveAvgPool2d(1)
    return model


def _timm(name: str, num_classes: int = 7) -> nn.Module:
    import timm

    return timm.create_model(name, pretrained=False, num_classes=num_classes, in_chans=3)


# registry name: (builder, default input size, the tables that use it, the layer Grad-CAM explains:
# the output of the last convolutional stage)
BASELINES = {
    "vgg19": (partial(_torchvision, "vgg19"), 224, "Pham et al. Table", "features.35"),
    "googlenet": (partial(_torchvision, "googlenet", aux_logits=False, init_weights=True), 224, "Pham et al. Table",
                  "inception5b"),
    "resnet18": (partial(_torchvision, "resnet18"), 224, "Pham et al. poster", "layer4"),
    "resnet34": (partial(_torchvision, "resnet34"), 224, "Pham et al. Table", "layer4"),
    "resnet50": (partial(_torchvision, "resnet50"), 224, "Du Table 1", "layer4"),
    "resnet152": (partial(_torchvision, "resnet152"), 224, "Pham et al. Table", "layer4"),
    "inception_v3": (partial(_torchvision, "inception_v3", aux_logits=False, init_weights=True), 299,
                     "Pham et al. Table", "Mixed_7c"),
    "densenet121": (partial(_torchvision, "densenet121"), 224, "Pham et al. Table", "features.norm5"),
    "efficientnet_b2b": (partial(_pytorchcv, "efficientnet_b2b"), 224, "Pham et al. Table", "features.final_block"),
    "resattnet56": (partial(_pytorchcv, "resattnet56"), 224, "Pham et al. Table", "features.post_activ"),
    "bam_resnet50": (partial(_pytorchcv, "bam_resnet50"), 224, "Pham et al. Table", "features.stage4"),
    "cbam_resnet50": (partial(_pytorchcv, "cbam_resnet50"), 224, "Pham et al. Table", "features.stage4"),
    "xception": (partial(_timm, "legacy_xception"), 299, "Yu Table 1", "act4"),
    "inception_v4": (partial(_timm, "inception_v4"), 299, "Yu Table 1", lambda m: m.features[-1]),
}

for _name, (_build, _size, _paper, _cam) in BASELINES.items():
    def _builder(num_classes: int = 7, _build=_build):
        return _build(num_classes=num_classes)
    _builder.__doc__ = f"{_name} baseline ({_paper}), from {_build.func.__name__.strip('_')}."
    register(_name, input_size=_size, in_channels=3, paper=_paper, cam_layer=_cam)(_builder)
