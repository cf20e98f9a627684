"""``simclr``: SimCLRv2 ResNet-50 (1x, selective kernels) (Chen et al., NeurIPS 2020), as dgm-eval's ``simclr``.

dgm-eval (Stein et al., NeurIPS 2023) uses the TensorFlow checkpoint ``r50_1x_sk1`` converted to
PyTorch by ``Separius/SimCLRv2-Pytorch`` (``convert.py`` writes ``r50_1x_sk1.pth`` holding
``{"resnet": state, "head": state}``) and that repository's network, and reads

* feature: ``net(x).mean(dim=[2, 3])``, the global average pool of the last stage, 2048-d for
  ``r50_1x``; not L2-normalised (neither the contrastive head nor ``fc`` is applied);
* preprocessing: ``Resize(224)`` on the PIL image (bilinear, shorter side to 224, aspect kept),
  ``ToTensor``, ``Normalize`` with the ImageNet mean/std (dgm-eval's choice: SimCLRv2 itself was
  trained on [0, 1] inputs without normalisation). As for ``swav``, dgm-eval does not crop; this
  extractor center-crops 224 x 224 after the resize (identical on square images).

No registry package builds this network (timm's ``skresnet50`` has two differently dilated
kernels, attention with bias-free 1x1 convolutions in another order, and no ResNet-D shortcut),
so it is implemented here with the converter's module names, so that its state dicts load
strictly: the ResNet-D deep stem (three 3x3 convolutions, 32-32-64 channels, when ``sk``),
bottleneck blocks whose 3x3 convolution is a selective kernel (one 3x3 convolution to ``2C``
channels, split in two branches, mixed by a softmax over branches of
``conv1x1(relu(bn(conv1x1(mean_hw(branch0 + branch1)))))``, hidden width
``max(int(C * 0.0625), 32)``), and projection shortcuts ``zero-pad right/bottom by 1 ->
AvgPool2d(2, stride) -> conv1x1 -> BN``. The converter pools in the shortcut also at stride 1
(the TF original skips the pooling there); this extractor follows the converter, as dgm-eval.

Weights: ``"default"`` looks for ``r50_1x_sk1.pth`` (the converter's output) in
:func:`workbench.paths.weights_dir`; there is no PyTorch download. A local path may be the
converter's file (``{"resnet": ...}``) or the bare ``resnet`` state dict. ``"none"``: seeded random
init (PyTorch's defaults for the layers). Options ``depth`` (50, 101, 152), ``width`` (1, 2, 3) and
``sk`` select the other SimCLRv2 checkpoints (``r152_3x_sk1`` ...).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .imagenet_transforms import IMAGENET_MEAN, IMAGENET_STD, ShorterSideResizeCrop
from .published_weights import load_strict, resolve_weights
from .registry import ExtractorCard, register_extractor
from .swav import ResNetTrunkExtractor
from .weights import check_init_seed, seeded_init

LAYERS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}
SK_RATIO = 0.0625
SK_MIN_DIM = 32
BN_EPS = 1e-5
SIZE = 224
EXPANSION = 4
TF_CHECKPOINTS = "gs://simclr-checkpoints/simclrv2/pretrained"


def checkpoint_name(depth: int = 50, width: int = 1, sk: bool = True) -> str:
    """SimCLRv2 checkpoint name, e.g. ``r50_1x_sk1``."""
    return f"r{depth}_{width}x_sk{int(sk)}"


def _conv(cin: int, cout: int, kernel: int = 3, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, stride=stride, padding=(kernel - 1) // 2, bias=False)


def _bn(channels: int, relu: bool = True) -> nn.Sequential:
    """BatchNorm then ReLU (or identity): keys ``<i>.0.*`` as the converter's ``BatchNormRelu``."""
    return nn.Sequential(nn.BatchNorm2d(channels, eps=BN_EPS), nn.ReLU() if relu else nn.Identity())


class SelectiveKernel(nn.Module):
    """SimCLRv2's selective-kernel 3x3 convolution: two 3x3 branches mixed by a per-channel softmax."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        hidden = max(int(cout * SK_RATIO), SK_MIN_DIM)
        self.main_conv = nn.Sequential(_conv(cin, 2 * cout, 3, stride), _bn(2 * cout))
        self.mixing_conv = nn.Sequential(_conv(cout, hidden, 1), _bn(hidden), _conv(hidden, 2 * cout, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.main_conv(x).chunk(2, dim=1)
        logits = self.mixing_conv((a + b).mean(dim=(2, 3), keepdim=True))
        wa, wb = logits.chunk(2, dim=1)
        weights = torch.softmax(torch.stack([wa, wb]), dim=0)
        return weights[0] * a + weights[1] * b


class Projection(nn.Module):
    """Projection shortcut: ResNet-D average pooling + 1x1 conv with selective kernels, else a strided 1x1 conv."""

    def __init__(self, cin: int, cout: int, stride: int, sk: bool) -> None:
        super().__init__()
        if sk:
            self.shortcut = nn.Sequential(
                nn.ZeroPad2d((0, 1, 0, 1)), nn.AvgPool2d(kernel_size=2, stride=stride), _conv(cin, cout, 1)
            )
        else:
            self.shortcut = _conv(cin, cout, 1, stride)
        self.bn = _bn(cout, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (selective kernel when ``sk``, strided) -> 1x1 (``4C``), plus the shortcut, then ReLU."""

    def __init__(self, cin: int, channels: int, stride: int, sk: bool, project: bool) -> None:
        super().__init__()
        self.projection = Projection(cin, channels * EXPANSION, stride, sk) if project else nn.Identity()
        middle: list[nn.Module] = (
            [SelectiveKernel(channels, channels, stride)]
            if sk
            else [_conv(channels, channels, 3, stride), _bn(channels)]
        )
        self.net = nn.Sequential(
            _conv(cin, channels, 1),
            _bn(channels),
            *middle,
            _conv(channels, channels * EXPANSION, 1),
            _bn(channels * EXPANSION, relu=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.projection(x) + self.net(x))


class Stage(nn.Module):
    """``n`` bottlenecks; the first projects (and strides). Keys ``blocks.<i>.*``."""

    def __init__(self, n: int, cin: int, channels: int, stride: int, sk: bool) -> None:
        super().__init__()
        blocks = [Bottleneck(cin, channels, stride, sk, project=True)]
        blocks += [Bottleneck(channels * EXPANSION, channels, 1, sk, project=False) for _ in range(n - 1)]
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x


def _stem(width: int, sk: bool) -> nn.Sequential:
    half = 64 * width // 2
    if sk:
        ops: list[nn.Module] = [_conv(3, half, 3, 2), _bn(half), _conv(half, half), _bn(half), _conv(half, 2 * half)]
    else:
        ops = [_conv(3, 2 * half, 7, 2)]
    return nn.Sequential(*ops, _bn(2 * half), nn.MaxPool2d(kernel_size=3, stride=2, padding=1))


class SimCLRv2ResNet(nn.Module):
    """SimCLRv2 ResNet in the module layout of the ``Separius/SimCLRv2-Pytorch`` converter.

    ``net`` = stem + 4 stages, ``fc`` the 1000-way linear layer of the checkpoint (unused by the
    features). ``forward(x)`` returns the global average pool of the last stage, ``B x 2048*width``.
    """

    def __init__(self, depth: int = 50, width: int = 1, sk: bool = True) -> None:
        super().__init__()
        stages: list[nn.Module] = [_stem(width, sk)]
        cin = 64 * width
        for i, n in enumerate(LAYERS[depth]):
            channels = 64 * width * 2**i
            stages.append(Stage(n, cin, channels, 1 if i == 0 else 2, sk))
            cin = channels * EXPANSION
        self.net = nn.Sequential(*stages)
        self.fc = nn.Linear(cin, 1000)
        self.num_features = cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).mean(dim=(2, 3))


CARD = ExtractorCard(
    default_weights="SimCLRv2 r50_1x_sk1: `r50_1x_sk1.pth` (TF checkpoint converted by Separius/SimCLRv2-Pytorch) "
    "in the weights directory",
    dim=2048,
    feature="global average pool of the last stage",
    preprocessing="PIL bilinear, shorter side to 224, center crop 224 (dgm-eval: no crop), ImageNet mean/std",
    reference="dgm-eval `simclr`",
)


@register_extractor("simclr", description="SimCLRv2 ResNet-50 1x SK pooled 2048-d (dgm-eval)", card=CARD)
def create_simclr(
    weights: str = "default", depth: int = 50, width: int = 1, sk: bool = True, seed: int = 0
) -> ResNetTrunkExtractor:
    """SimCLRv2 ResNet features (dgm-eval's ``simclr`` encoder).

    Args:
        weights: ``"default"`` (``r50_1x_sk1.pth`` in weights_dir()), a local checkpoint path
            (converter output ``{"resnet": ...}`` or a bare state dict), or ``"none"``.
        depth: 50 (default), 101 or 152.
        width: width multiplier 1 (default), 2 or 3.
        sk: selective kernels (default True, ``_sk1``).
        seed: seed of the random initialisation when ``weights="none"``.
    """
    if depth not in LAYERS:
        raise ValueError(f"depth must be one of {sorted(LAYERS)}, got {depth!r}")
    if width not in (1, 2, 3) or isinstance(width, bool):
        raise ValueError(f"width must be 1, 2 or 3, got {width!r}")
    if not isinstance(sk, bool):
        raise ValueError(f"sk must be True or False, got {sk!r}")
    seed = check_init_seed(seed)
    name = checkpoint_name(depth, width, sk)
    state, info = resolve_weights(
        weights,
        extractor="simclr",
        filename=f"{name}.pth",
        url=f"{TF_CHECKPOINTS}/{name} (TensorFlow; convert it with github.com/Separius/SimCLRv2-Pytorch convert.py)",
        identity=f"simclrv2:{name}",
        seed=seed,
        wrappers=("resnet", "state_dict"),
    )
    with seeded_init(seed):
        net = SimCLRv2ResNet(depth, width, sk)
    if state is not None:
        load_strict(net, state, source=info.source, extractor="simclr", what=f"SimCLRv2 {name} ('resnet' part)")
    net.eval().requires_grad_(False)
    return ResNetTrunkExtractor(
        name="simclr",
        variant=name,
        dim=int(net.num_features),
        weights=info,
        preprocessor=ShorterSideResizeCrop(
            resize=SIZE, crop=SIZE, mean=IMAGENET_MEAN, std=IMAGENET_STD, interpolation="bilinear"
        ),
        feature_layer="global average pool of the last stage (dgm-eval), not L2-normalised",
        heatmap_layer="net.4",
        net=net,
    )
