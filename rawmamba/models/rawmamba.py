"""RAWMamba: unified sRGB-to-RAW de-rendering for images and videos (Chen et al., paper sec. 3, Fig. 2).

Pipeline, eq. 5 ``y = f(x | metadata)``:
1. f1 (ConvNeXt) encodes every sRGB frame at strides 4, 8, 16, 32 (eq. 8).
2. The UME (ume.py) turns the metadata pair (x', y') into an embedding E per frame at stride 8
   (GEB eq. 9-10, LEB eq. 11-12, ``E = a E_local + b E_global``).
3. Search blocks (channel-wise transformers) query E with the sRGB features at every scale.
4. The scales are aggregated (eq. 13) at stride 4 into a ``(B, C, T, H/4, W/4)`` volume,
   refined by a stack of LTA-Mamba modules (eq. 14-17; lta_mamba.py).
5. A 3-D convolutional decoder upsamples to RAW frames (decoder.py).

Our extension beyond the paper (``global_prior=True``, the default): a closed-form global colour prior
(global_prior.py) fits a polynomial sRGB -> RAW map to each element's metadata by least squares and
applies it to every frame. It is the exact global part of the ISP that the GEB otherwise has to learn;
the decoder outputs it plus a zero-initialised per-pixel correction and also sees it in its
full-resolution skip, so the untrained network starts at the global fit (``GlobalColourFit``) and
training learns the local part. ``global_prior=False`` is the paper's architecture as before.
Two more extensions build on the prior (both need it):
- ``prior_residual``: f3 reads the metadata RAW together with the prior's residual on it,
  ``y' - g(x')`` (masked), so the embedding says where and how much the global fit is wrong, and the
  network can learn to leave alone what the global map already explains (a plain global ISP).
- ``correction_gate`` (at inference): the decoder's correction ``d = y_hat - p`` is scaled per
  image and RAW channel by ``alpha = clamp(<d, y' - p>_S / <d, d>_S, 0, 1)``, the least-squares
  weight of the correction that best explains the metadata ``S``: the samples of sampled image
  metadata, or the whole metadata frame of dense video metadata (a window of frames that does not
  start with the metadata frame gets it prepended, as every training clip starts with it). A
  correction the metadata does not confirm is damped toward the global fit; one it confirms is kept
  in full. Like dropout it acts in eval mode only: in training a clamped ``alpha = 0`` would cut the
  gradient exactly where the network is most wrong.
One more, independent of the prior:
- ``sample_refinement="rbf"`` (at inference, sampled metadata only): the residual left at the RAW
  samples is interpolated to every pixel in joint colour + position space and added
  (sample_refinement.py), so the output agrees with the stored samples; ``"none"`` turns it off.

Image (T = 1, sampled metadata with a mask) and video (T >= 1, dense first-frame metadata with
optical flow) run through the same weights. Inputs of any size are padded internally to a multiple of
the largest encoder stride and the output is cropped back.

Ablation switches (paper Table 3): ``use_geb``, ``use_leb`` (with both off there is no UME and no
search block: the network ignores the metadata, except through the global prior when it is on),
``local_scan``, ``global_scan`` (with both off there is no LTA-Mamba stack), ``plain_mamba``
(raster-only Mamba without the tone-aware design), and ours, ``global_prior``.
"""

from __future__ import annotations

import torch
from torch import nn

from rawmamba.errors import RawMambaError
from rawmamba.models.aggregation import MultiScaleAggregation
from rawmamba.models.decoder import Decoder3d, base_colour_map
from rawmamba.models.encoders import ConvNeXtEncoder
from rawmamba.models.global_prior import GlobalColourPrior
from rawmamba.models.lta_mamba import LTAMambaStack
from rawmamba.models.optical_flow import DIS_PRESETS, dis_flow
from rawmamba.models.padding import crop_to, pad_to_multiple
from rawmamba.models.sample_refinement import REFINEMENTS, refine_on_samples
from rawmamba.models.search_block import SearchBlock
from rawmamba.models.ume import UnifiedMetadataEmbedding


class RAWMamba(nn.Module):
    """The assembled network. All arguments are keyword-only; ``model.config`` holds them (except
    ``encoder_weights``) so that ``RAWMamba(**model.config)`` rebuilds the architecture.

    Args:
        raw_channels: ``C_raw``: 3 (demosaiced raw-RGB) or 4 (packed Bayer at the sRGB's size).
        encoder: timm ConvNeXt name for f1 (paper: ConvNeXt-T, ``"convnext_tiny"``).
        encoder_depths: blocks per encoder stage (None: the named model's).
        encoder_dims: channels per encoder stage (None: the named model's).
        encoder_weights: local path of ImageNet weights for f1, or None (never downloaded).
        drop_path_rate: stochastic depth in f1.
        ume_stage: encoder stage whose stride is the UME cell (stage 1 = stride 8: one metadata
            sample per 8x8 cell, as the paper's 1.5% sampling).
        embed_dim: channels of the metadata embedding E (a multiple of 4 and of the heads).
        meta_hidden: hidden width of the f2/f3 per-pixel MLPs.
        use_geb: global embedding block (eq. 9-10).
        use_leb: local embedding block (eq. 11-12).
        geb_heads: GEB attention heads.
        leb_heads: LEB deformable-attention heads.
        leb_points: LEB sampling points per head.
        colour_query: add f2(frame) to the UME query (see ume.py).
        pe_temperature: positional-encoding temperature.
        geb_query_chunk: GEB queries per attention call (memory bound).
        geb_max_keys: GEB key budget, our extension for linear cost in pixels (see ume.py; None: every
            metadata cell is a key).
        search_heads: heads of the channel-wise search attention (must divide every stage width).
        ffn_expansion: width factor of the search blocks' feed-forward.
        mamba_stage: the encoder stage whose stride the aggregation (eq. 13) and LTA-Mamba run at;
            stages from it to the last are aggregated.
        mamba_dim: channels of the aggregated volume and of the LTA-Mamba stack.
        mamba_depth: number of LTA-Mamba modules (paper: 3).
        d_state: SSM state size.
        expand: Mamba inner expansion.
        local_scan: LTA local (3-D Hilbert) block.
        global_scan: LTA global (raster) block.
        plain_mamba: raster-only Mamba without the tone-aware design (``tone_aware=False``).
        ca_reduction: bottleneck ratio of the LTA global block's channel attention (small widths need a
            small ratio, or the squeeze-excitation bottleneck has a single, easily dead, ReLU unit).
        mamba_backend: selective-scan backend name passed to the SSM (None: automatic).
        decoder_dims: decoder widths from the Mamba stride down to full resolution.
        temporal_kernel: time extent of the decoder's 3-D kernels.
        flow_preset: OpenCV DIS preset used when dense metadata comes without flow.
        global_prior: start the output at a metadata-fitted global colour prior (our extension, see
            the module docstring); False gives the paper's architecture.
        prior_degree: polynomial degree of the global prior.
        prior_ridge: the prior's Tikhonov weight, relative to its normal matrix's mean diagonal.
        prior_max_pairs: at most this many metadata pairs per element enter the prior's fit.
        prior_residual: f3 also reads the prior's residual on the metadata (with ``global_prior`` only).
        correction_gate: in eval mode, scale the correction by its least-squares weight on the metadata
            (with ``global_prior`` only).
        sample_refinement: in eval mode with sampled metadata, ``"rbf"`` interpolates the residual at the
            samples to every pixel and adds it; ``"none"``: the network's output as it is.
    """

    def __init__(
        self,
        *,
        raw_channels: int = 3,
        encoder: str = "convnext_tiny",
        encoder_depths: tuple[int, ...] | None = None,
        encoder_dims: tuple[int, ...] | None = None,
        encoder_weights: str | None = None,
        drop_path_rate: float = 0.0,
        ume_stage: int = 1,
        embed_dim: int = 64,
        meta_hidden: int = 64,
        use_geb: bool = True,
        use_leb: bool = True,
        geb_heads: int = 1,
        leb_heads: int = 4,
        leb_points: int = 4,
        colour_query: bool = True,
        pe_temperature: float = 10000.0,
        geb_query_chunk: int = 4096,
        geb_max_keys: int | None = 1024,
        search_heads: int = 1,
        ffn_expansion: float = 2.0,
        mamba_stage: int = 0,
        mamba_dim: int = 96,
        mamba_depth: int = 3,
        d_state: int = 16,
        expand: int = 2,
        local_scan: bool = True,
        global_scan: bool = True,
        plain_mamba: bool = False,
        ca_reduction: int = 16,
        mamba_backend: str | None = None,
        decoder_dims: tuple[int, ...] = (64, 32, 32),
        temporal_kernel: int = 3,
        flow_preset: str = "medium",
        global_prior: bool = True,
        prior_degree: int = 3,
        prior_ridge: float = 1e-6,
        prior_max_pairs: int = 65_536,
        prior_residual: bool = True,
        correction_gate: bool = True,
        sample_refinement: str = "rbf",
    ) -> None:
        super().__init__()
        self.config = {k: v for k, v in locals().items() if k not in ("self", "__class__", "encoder_weights")}
        base_colour_map(raw_channels)  # validates raw_channels
        if flow_preset not in DIS_PRESETS:
            raise RawMambaError(f"flow_preset must be one of {sorted(DIS_PRESETS)}, got {flow_preset!r}")
        if not 0 <= mamba_stage <= 3 or not 0 <= ume_stage <= 3:
            raise RawMambaError(f"mamba_stage and ume_stage must be in 0..3, got {mamba_stage}, {ume_stage}")
        self.raw_channels, self.flow_preset = raw_channels, flow_preset
        self.sample_refinement = sample_refinement  # checked by the property's setter
        self.agg_stages = list(range(mamba_stage, 4))
        self.ume_stage = ume_stage
        self.prior_residual = global_prior and prior_residual
        self.correction_gate = global_prior and correction_gate
        self.out_indices = sorted(set(self.agg_stages) | {ume_stage})
        self.encoder = ConvNeXtEncoder(
            backbone=encoder,
            depths=encoder_depths,
            dims=encoder_dims,
            out_indices=tuple(self.out_indices),
            drop_path_rate=drop_path_rate,
            weights=encoder_weights,
        )
        channels = dict(zip(self.out_indices, self.encoder.channels, strict=True))
        reductions = dict(zip(self.out_indices, self.encoder.reductions, strict=True))
        self.pad_multiple = max(reductions.values())
        self.ume: UnifiedMetadataEmbedding | None = None
        self.search: nn.ModuleList | None = None
        if use_geb or use_leb:
            self.ume = UnifiedMetadataEmbedding(
                channels[ume_stage],
                raw_channels * 2 if self.prior_residual else raw_channels,  # f3 input: y' (and y' - g(x'))
                dim=embed_dim,
                cell=reductions[ume_stage],
                meta_hidden=meta_hidden,
                use_geb=use_geb,
                use_leb=use_leb,
                geb_heads=geb_heads,
                leb_heads=leb_heads,
                leb_points=leb_points,
                colour_query=colour_query,
                pe_temperature=pe_temperature,
                query_chunk=geb_query_chunk,
                geb_max_keys=geb_max_keys,
            )
            self.search = nn.ModuleList(
                SearchBlock(channels[i], embed_dim, heads=search_heads, ffn_expansion=ffn_expansion)
                for i in self.agg_stages
            )
        self.aggregate = MultiScaleAggregation([channels[i] for i in self.agg_stages], mamba_dim)
        self.lta: LTAMambaStack | None = None
        if local_scan or global_scan:
            self.lta = LTAMambaStack(
                mamba_dim,
                depth=mamba_depth,
                d_state=d_state,
                expand=expand,
                local_scan=local_scan,
                global_scan=global_scan,
                tone_aware=not plain_mamba,
                reduction=ca_reduction,
                backend=mamba_backend,
            )
        self.prior: GlobalColourPrior | None = None
        if global_prior:
            self.prior = GlobalColourPrior(degree=prior_degree, ridge=prior_ridge, max_pairs=prior_max_pairs)
        self.decoder = Decoder3d(
            mamba_dim,
            raw_channels,
            reduction=reductions[mamba_stage],
            dims=tuple(decoder_dims),
            temporal_kernel=temporal_kernel,
            prior=global_prior,
        )

    @property
    def sample_refinement(self) -> str:
        """``"rbf"`` or ``"none"``: whether eval-mode output on sampled metadata is refined (settable)."""
        return self._sample_refinement

    @sample_refinement.setter
    def sample_refinement(self, value: str) -> None:
        if value not in REFINEMENTS:
            raise RawMambaError(f"sample_refinement must be one of {REFINEMENTS}, got {value!r}")
        self._sample_refinement = value

    def _check_inputs(
        self,
        x: torch.Tensor,
        meta_srgb: torch.Tensor,
        meta_raw: torch.Tensor,
        meta_mask: torch.Tensor | None,
        flow: torch.Tensor | None,
    ) -> None:
        """Raise RawMambaError naming the argument whose shape breaks the contract."""
        if x.dim() != 5 or x.shape[2] != 3:
            raise RawMambaError(f"x must be (B, T, 3, H, W) sRGB frames, got {tuple(x.shape)}")
        if x.numel() == 0:
            raise RawMambaError(f"x must hold at least one frame of one pixel, got {tuple(x.shape)}")
        b, t, _, h, w = x.shape
        if tuple(meta_srgb.shape) != (b, 3, h, w):
            raise RawMambaError(f"meta_srgb must be (B, 3, H, W) = {(b, 3, h, w)} like x, got {tuple(meta_srgb.shape)}")
        if meta_raw.dim() != 4 or meta_raw.shape[1] != self.raw_channels:
            raise RawMambaError(
                f"meta_raw must have C_raw = {self.raw_channels} channels (this model's raw_channels), "
                f"got {tuple(meta_raw.shape)}"
            )
        if tuple(meta_raw.shape) != (b, self.raw_channels, h, w):
            raise RawMambaError(
                f"meta_raw must be (B, C_raw, H, W) = {(b, self.raw_channels, h, w)} like x, "
                f"got {tuple(meta_raw.shape)}"
            )
        if meta_mask is not None:
            if tuple(meta_mask.shape) != (b, 1, h, w):
                raise RawMambaError(f"meta_mask must be (B, 1, H, W) = {(b, 1, h, w)}, got {tuple(meta_mask.shape)}")
            empty = (meta_mask.flatten(1).sum(1) <= 0).nonzero().flatten().tolist()
            if empty:
                raise RawMambaError(f"meta_mask has no sampled pixel for batch element(s) {empty}")
        if flow is not None and tuple(flow.shape) != (b, t, 2, h, w):
            raise RawMambaError(f"flow must be (B, T, 2, H, W) = {(b, t, 2, h, w)}, got {tuple(flow.shape)}")

    def forward(
        self,
        x: torch.Tensor,
        meta_srgb: torch.Tensor,
        meta_raw: torch.Tensor,
        meta_mask: torch.Tensor | None = None,
        flow: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """De-render sRGB frames to RAW.

        Args:
            x: ``(B, T, 3, H, W)`` sRGB frames in [0, 1] (an image is T = 1).
            meta_srgb: ``(B, 3, H, W)`` metadata sRGB: ``x * mask`` (image) or the first frame (video).
            meta_raw: ``(B, C_raw, H, W)`` metadata RAW: ``y * mask`` or the first frame's RAW.
            meta_mask: ``(B, 1, H, W)`` sample mask in {0, 1}, or None for dense first-frame metadata.
            flow: ``(B, T, 2, H, W)`` backward flow from frame t to the metadata frame in pixels, or
                None: computed with OpenCV DIS for dense metadata (when the LEB is used); sampled
                metadata is taken to be aligned with every frame.

        Returns:
            ``(B, T, C_raw, H, W)`` RAW in [0, 1].
        """
        self._check_inputs(x, meta_srgb, meta_raw, meta_mask, flow)
        if self.training:
            return self._derender(x, meta_srgb, meta_raw, meta_mask, flow)[0]
        if meta_mask is not None:
            raw, prior = self._derender(x, meta_srgb, meta_raw, meta_mask, flow)
            if self.correction_gate:
                raw = gate_correction(raw, prior, meta_raw, meta_mask)
            if self.sample_refinement == "rbf":
                raw = refine_on_samples(raw, x, meta_raw, meta_mask)
            return raw
        if not self.correction_gate:
            return self._derender(x, meta_srgb, meta_raw, meta_mask, flow)[0]
        # Dense metadata: the metadata frame is the evidence; a window that does not start with it gets it
        # prepended (as every training clip starts with it), and its output dropped.
        anchored = torch.equal(x[:, 0], meta_srgb)
        if not anchored:
            x = torch.cat((meta_srgb[:, None], x), dim=1)
            flow = None if flow is None else torch.cat((torch.zeros_like(flow[:, :1]), flow), dim=1)
        raw, prior = self._derender(x, meta_srgb, meta_raw, meta_mask, flow)
        raw = gate_correction(raw, prior, meta_raw, torch.ones_like(meta_raw[:, :1]), evidence_frames=1)
        return raw if anchored else raw[:, 1:]

    def _derender(
        self,
        x: torch.Tensor,
        meta_srgb: torch.Tensor,
        meta_raw: torch.Tensor,
        meta_mask: torch.Tensor | None,
        flow: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The network's RAW and the global prior (None without it), both cropped to the input size."""
        b, t, _, h, w = x.shape
        uses_flow = self.ume is not None and self.ume.leb is not None
        if flow is None and meta_mask is None and uses_flow:
            flow = dis_flow(x, meta_srgb, preset=self.flow_preset)
        m = self.pad_multiple
        if meta_mask is None:  # dense: mirror-pad the content, mark only the real extent as metadata
            meta_mask = x.new_ones(b, 1, h, w)
            meta_srgb, meta_raw = pad_to_multiple(meta_srgb, m), pad_to_multiple(meta_raw, m)
        else:  # sampled: padded pixels are never samples
            meta_srgb = pad_to_multiple(meta_srgb, m, mode="constant")
            meta_raw = pad_to_multiple(meta_raw, m, mode="constant")
        meta_mask = pad_to_multiple(meta_mask.to(x.dtype), m, mode="constant")
        x = pad_to_multiple(x, m)
        flow = pad_to_multiple(flow, m, mode="replicate") if flow is not None and uses_flow else None

        coefficients = None if self.prior is None else self.prior.fit_metadata(meta_srgb, meta_raw, meta_mask)
        feats = dict(zip(self.out_indices, self.encoder(x.flatten(0, 1)), strict=True))
        levels = [feats[i] for i in self.agg_stages]
        if self.ume is not None and self.search is not None:
            query = feats[self.ume_stage]
            meta_values = meta_raw
            if self.prior_residual:
                residual = (meta_raw - self.prior.apply(coefficients, meta_srgb)) * meta_mask
                meta_values = torch.cat((meta_raw, residual), dim=1)
            embedding = self.ume(query.view(b, t, *query.shape[1:]), x, meta_srgb, meta_values, meta_mask, flow)
            embedding = embedding.flatten(0, 1)
            levels = [block(f, embedding) for block, f in zip(self.search, levels, strict=True)]
        volume = self.aggregate(levels)  # eq. 13, (B*T, C, H/r, W/r)
        volume = volume.view(b, t, *volume.shape[1:]).transpose(1, 2)  # (B, C, T, H/r, W/r)
        if self.lta is not None:
            volume = self.lta(volume)
        if self.prior is None:
            return crop_to(self.decoder(volume, x, None), h, w), None
        prior = self.prior.apply(coefficients, x)
        return crop_to(self.decoder(volume, x, prior), h, w), crop_to(prior, h, w)


def gate_correction(
    raw: torch.Tensor,
    prior: torch.Tensor,
    meta_raw: torch.Tensor,
    meta_mask: torch.Tensor,
    *,
    evidence_frames: int | None = None,
    eps: float = 1e-8,
) -> torch.Tensor:
    """Damp the correction ``d = raw - prior`` to what the metadata confirms (our extension).

    Per batch element and RAW channel, ``alpha = clamp((<d, r> + n eps) / (<d, d> + n eps), 0, 1)``
    with ``r = meta_raw - prior``, the inner products taken over the ``n`` metadata pixels of the
    evidence frames: the least-squares weight of the correction on the metadata. ``eps`` (a mean
    squared correction too small to matter) makes a vanishing correction pass unchanged
    (``alpha -> 1``). Returns ``prior + alpha * d`` for every frame.

    Args:
        raw, prior: ``(B, T, C_raw, H, W)``.
        meta_raw: ``(B, C_raw, H, W)`` metadata RAW.
        meta_mask: ``(B, 1, H, W)`` where the metadata holds (the samples, or all ones for a dense frame).
        evidence_frames: the leading frames the metadata describes (None: every frame, as sampled image
            metadata; 1: frame 0 is the dense metadata frame).
    """
    with torch.autocast(raw.device.type, enabled=False):
        correction = raw.float() - prior.float()
        evidence = slice(None, evidence_frames)
        residual = meta_raw.float()[:, None] - prior[:, evidence].float()
        weight = meta_mask.float()[:, None]
        dims = (1, 3, 4)
        floor = eps * weight.sum(dims)
        confirmed = (weight * correction[:, evidence] * residual).sum(dims) + floor
        alpha = confirmed / ((weight * correction[:, evidence].square()).sum(dims) + floor)
        gated = prior.float() + alpha.clamp(0.0, 1.0)[:, None, :, None, None] * correction
    return gated.to(raw.dtype)


TINY_ARGS = {
    "encoder": "convnext_atto",
    "encoder_depths": (1, 1, 2, 1),
    "encoder_dims": (16, 32, 64, 128),
    "embed_dim": 32,
    "meta_hidden": 32,
    "leb_heads": 4,
    "leb_points": 4,
    "mamba_dim": 32,
    "mamba_depth": 2,
    "d_state": 8,
    "ca_reduction": 4,
    "decoder_dims": (32, 16, 16),
    "flow_preset": "fast",
}

BASE_ARGS = {
    "encoder": "convnext_tiny",
    "embed_dim": 96,
    "meta_hidden": 64,
    "mamba_dim": 96,
    "mamba_depth": 3,
    "d_state": 16,
    "decoder_dims": (96, 48, 32),
    "flow_preset": "medium",
}


def rawmamba_tiny(**overrides) -> RAWMamba:
    """A ~1 M-parameter RAWMamba for CPU tests and the demo (ConvNeXt-atto-sized encoder)."""
    return RAWMamba(**{**TINY_ARGS, **overrides})


def rawmamba_base(**overrides) -> RAWMamba:
    """The paper's configuration: ConvNeXt-T encoder, 3 LTA-Mamba modules."""
    return RAWMamba(**{**BASE_ARGS, **overrides})
