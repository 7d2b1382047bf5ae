"""The CAM family: each method only says how it weights the layer's channels."""

from __future__ import annotations

import torch

from vizcli.cam.base import ActivationCam, LayerProbe, class_scores, register
from vizcli.errors import UsageError
from vizcli.hooks import intercept, model_output, preserved_state


@register
class GradCam(ActivationCam):
    name, title = "gradcam", "Grad-CAM"

    def weights(self, acts, grads, probe, batch, classes, logits):  # noqa: ANN001, ANN201
        return grads.mean((2, 3), keepdim=True)


@register
class GradCamPlusPlus(ActivationCam):
    name, title = "gradcam++", "Grad-CAM++"

    def weights(self, acts, grads, probe, batch, classes, logits):  # noqa: ANN001, ANN201
        grads2 = grads.pow(2)
        grads3 = grads2 * grads
        sum_acts = acts.sum((2, 3), keepdim=True)
        alpha = grads2 / (2 * grads2 + sum_acts * grads3 + 1e-6)
        alpha = torch.where(grads != 0, alpha, torch.zeros_like(alpha))
        return (alpha * torch.relu(grads)).sum((2, 3), keepdim=True)


@register
class XGradCam(ActivationCam):
    name, title = "xgradcam", "XGrad-CAM"

    def weights(self, acts, grads, probe, batch, classes, logits):  # noqa: ANN001, ANN201
        sum_acts = acts.sum((2, 3), keepdim=True)
        return (grads * acts / (sum_acts + 1e-7)).sum((2, 3), keepdim=True)


@register
class HiResCam(ActivationCam):
    name, title = "hirescam", "HiResCAM"

    def weights(self, acts, grads, probe, batch, classes, logits):  # noqa: ANN001, ANN201
        return grads  # element-wise: the map is sum_k grad_k * A_k


@register
class LayerCam(ActivationCam):
    name, title = "layercam", "LayerCAM"

    def weights(self, acts, grads, probe, batch, classes, logits):  # noqa: ANN001, ANN201
        return torch.relu(grads)


@register
class OriginalCam(ActivationCam):
    """Zhou et al. 2016: for GAP + linear heads, the class's linear weights over the channels."""

    name, title = "cam", "CAM"
    uses_gradients = False

    def weights(self, acts, grads, probe, batch, classes, logits):  # noqa: ANN001, ANN201
        linear = _final_linear(probe.model)
        if linear.in_features != acts.shape[1]:
            raise UsageError(
                f"cam needs the layer feeding global pooling + linear ({linear.in_features} "
                f"channels); {probe.name!r} has {acts.shape[1]}",
                hint="use gradcam, which works for any layer",
            )
        return linear.weight[classes].to(acts.dtype)[:, :, None, None]


def _final_linear(model: torch.nn.Module) -> torch.nn.Linear:
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    if not linears:
        raise UsageError("cam needs a model ending in a linear classifier", hint="use gradcam")
    return linears[-1]


@register
class EigenCam(ActivationCam):
    """The first principal component of the activations (class-agnostic, no gradients).

    SVD leaves the sign open; it is chosen so the map correlates positively with the mean
    activation, so the highlighted region is where the layer fires, not its complement.
    """

    name, title = "eigencam", "Eigen-CAM"
    uses_gradients = False

    def weights(self, acts, grads, probe, batch, classes, logits):  # noqa: ANN001, ANN201
        return torch.ones_like(acts[:, :1])  # unused: __call__ is overridden below

    def __call__(
        self, probe: LayerProbe, batch: torch.Tensor, classes: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        logits, leaf = probe.run(batch, grads=False)
        acts = probe.maps(leaf).detach().float()
        maps = []
        for sample in acts:
            matrix = sample.flatten(1).T  # (H*W, C)
            centred = matrix - matrix.mean(0)
            _, _, vh = torch.linalg.svd(centred, full_matrices=False)
            projection = (centred @ vh[0]).view(sample.shape[1:])
            if torch.dot(projection.flatten(), sample.mean(0).flatten()) < 0:
                projection = -projection
            maps.append(torch.relu(projection))
        return torch.stack(maps), logits.detach()


@register
class ScoreCam(ActivationCam):
    """Wang et al. 2020: each channel, upsampled and min-max scaled, masks the input; the
    channel's weight is the softmax (over channels) of the masked input's class score.

    Exact and much cheaper than the reference: channels that are constant (all zero after a
    ReLU, typically half of them) all mask the input to zeros, so one forward pass scores them
    all; masked inputs are built a few at a time, never all at once.
    """

    name, title = "scorecam", "Score-CAM"
    uses_gradients = False
    chunk = 4  # masked inputs per forward pass: small batches won on 2 CPU cores

    def weights(self, acts, grads, probe, batch, classes, logits):  # noqa: ANN001, ANN201
        size = batch.shape[-2:]
        all_weights = []
        for sample, image, cls in zip(acts, batch, classes, strict=True):
            flat = sample.flatten(1)
            varying = (flat.amax(1) - flat.amin(1)) > 0  # constant stays constant upsampled
            scores = torch.empty(sample.shape[0], dtype=torch.float32)
            if not varying.all():
                zeros = torch.zeros_like(image)[None]
                scores[~varying] = float(class_scores(_logits(probe, zeros), cls.view(1))[0])
            index = varying.nonzero().flatten()
            for start in range(0, len(index), self.chunk):
                chunk = index[start : start + self.chunk]
                up = torch.nn.functional.interpolate(
                    sample[chunk][None], size=size, mode="bilinear", align_corners=True
                )[0]
                low = up.flatten(1).amin(1)[:, None, None]
                high = up.flatten(1).amax(1)[:, None, None]
                masked = image[None] * ((up - low) / (high - low + 1e-8))[:, None]
                chunk_scores = class_scores(_logits(probe, masked), cls.expand(len(chunk)))
                scores[chunk] = chunk_scores.float().cpu()
            all_weights.append(torch.softmax(scores, 0).to(acts.dtype))
        return torch.stack(all_weights)[:, :, None, None].to(acts.device)


def _logits(probe: LayerProbe, batch: torch.Tensor) -> torch.Tensor:
    """One masked pass, in eval mode, the model handed back as it was. The *input* goes
    channels-last, not the model: convolutions then run in that layout (at 224 pixels as fast
    as a channels-last model on CPU) and the caller's parameters are never converted."""
    with preserved_state(probe.model), torch.inference_mode():
        return model_output(probe.model(batch.contiguous(memory_format=torch.channels_last)))


@register
class AblationCam(ActivationCam):
    """Desai & Ramaswamy 2020: a channel's weight is the relative drop of the class score
    when that channel is zeroed. Channels already all zero cannot drop it: not re-run."""

    name, title = "ablationcam", "Ablation-CAM"
    uses_gradients = False
    chunk = 8

    def weights(self, acts, grads, probe, batch, classes, logits):  # noqa: ANN001, ANN201
        original = class_scores(logits, classes).float()
        all_weights = []
        for b, (sample, cls) in enumerate(zip(acts, classes, strict=True)):
            active = (sample.flatten(1).abs().amax(1) > 0).nonzero().flatten()
            ablated = torch.full((sample.shape[0],), float(original[b]))
            for start in range(0, len(active), self.chunk):
                chunk = active[start : start + self.chunk]
                state = {"chunk": chunk}

                def zero_channels(
                    name: str, output: torch.Tensor, state: dict = state
                ) -> torch.Tensor:
                    # The layers before run once on one image; the batch grows here, one copy
                    # per ablated channel (the reference re-runs the whole network per copy).
                    out = output.repeat(len(state["chunk"]), *[1] * (output.dim() - 1))
                    rows = torch.arange(len(state["chunk"]))
                    channel_dim = {"nchw": 1, "nhwc": 3, "tokens": 2}[probe.layout.kind]
                    index = [slice(None)] * out.dim()
                    index[0], index[channel_dim] = rows, state["chunk"]
                    out[tuple(index)] = 0
                    return out

                with (
                    intercept(probe.model, {probe.name: probe.module}, zero_channels),
                    torch.no_grad(),
                ):
                    scores = class_scores(
                        model_output(probe.model(batch[b : b + 1])), cls.expand(len(chunk))
                    )
                ablated[chunk] = scores.float().cpu()
            all_weights.append((original[b].cpu() - ablated) / original[b].cpu())
        return torch.stack(all_weights)[:, :, None, None].to(acts.dtype).to(acts.device)
