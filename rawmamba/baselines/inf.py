"""INF-style de-rendering: a per-image implicit neural function fitted to the samples at test time.

After Li et al. (2023), who fit a small SIREN (sine-activated MLP) with a colour branch and a position
branch to the sampled (sRGB, RAW) pixels of each image, tile by tile, with no pretraining. Here:

- the image is cut into ``tile x tile`` tiles; the network of a tile is fitted to the samples inside the
  tile *and* within ``margin`` pixels around it (by default one tile: the neighbouring tiles' samples),
  so that tiles agree at their borders;
- per tile: colour branch ``sin(omega_colour * (W_c rgb + b_c))`` and position branch
  ``sin(omega_xy * (W_p xy + b_p))`` (``xy`` in [-1, 1] over the tile plus margin), concatenated, then
  ``depth`` sine layers of width ``hidden`` and a linear output of ``C_raw`` values; SIREN initialisation
  (Sitzmann et al. 2020): first layers uniform in ``±1/fan_in``, later ``±sqrt(6/fan_in)/omega``;
- the output is added to a global colour fit of the samples (``GlobalColourFit``, argument ``base``),
  so the network learns only the spatially varying correction (``base="none"``: it learns the RAW, as in
  the paper). The output layer starts at zero, so an unfitted network returns the global fit;
- all tiles are fitted at once as one batched network (independent weights, ``torch.bmm``) with Adam on
  the mean squared error of each tile's samples for ``iterations`` steps. The result is deterministic for
  a given ``seed`` (initialisation from a seeded generator, no other randomness).
"""

from __future__ import annotations

import math

import torch

from rawmamba.baselines.base import DerenderMethod
from rawmamba.baselines.global_fit import GlobalColourFit, polynomial_features
from rawmamba.errors import RawMambaError

__all__ = ["ImplicitNeuralFit"]

BASES = ("global", "none")


def _uniform(shape: tuple[int, ...], bound: float, generator: torch.Generator) -> torch.nn.Parameter:
    return torch.nn.Parameter((torch.rand(shape, generator=generator, dtype=torch.float32) * 2 - 1) * bound)


class _TiledSiren(torch.nn.Module):
    """``tiles`` independent two-branch SIRENs evaluated together: ``(tiles, N, 3), (tiles, N, 2) -> (tiles, N, C)``."""

    def __init__(self, tiles: int, hidden: int, depth: int, channels: int, omega_colour: float, omega_xy: float,
                 generator: torch.Generator):
        super().__init__()
        self.omega_colour, self.omega_xy = omega_colour, omega_xy
        self.colour_w = _uniform((tiles, 3, hidden), 1 / 3, generator)
        self.colour_b = _uniform((tiles, 1, hidden), 1 / 3, generator)
        self.xy_w = _uniform((tiles, 2, hidden), 1 / 2, generator)
        self.xy_b = _uniform((tiles, 1, hidden), 1 / 2, generator)
        self.hidden_w = torch.nn.ParameterList()
        self.hidden_b = torch.nn.ParameterList()
        fan_in = 2 * hidden
        for _ in range(depth):
            bound = math.sqrt(6 / fan_in) / omega_colour
            self.hidden_w.append(_uniform((tiles, fan_in, hidden), bound, generator))
            self.hidden_b.append(_uniform((tiles, 1, hidden), bound, generator))
            fan_in = hidden
        self.out_w = torch.nn.Parameter(torch.zeros(tiles, fan_in, channels))
        self.out_b = torch.nn.Parameter(torch.zeros(tiles, 1, channels))

    def forward(self, colour: torch.Tensor, xy: torch.Tensor) -> torch.Tensor:
        h = torch.cat([torch.sin(self.omega_colour * (torch.bmm(colour, self.colour_w) + self.colour_b)),
                       torch.sin(self.omega_xy * (torch.bmm(xy, self.xy_w) + self.xy_b))], dim=-1)
        for weight, bias in zip(self.hidden_w, self.hidden_b, strict=True):
            h = torch.sin(self.omega_colour * (torch.bmm(h, weight) + bias))
        return torch.bmm(h, self.out_w) + self.out_b


class ImplicitNeuralFit(DerenderMethod):
    """Per-image SIREN (colour + position branches) fitted tile by tile to the sampled pixels.

    Args:
        tile: tile side in pixels (tiles at the right/bottom may be smaller).
        margin: pixels around a tile whose samples also train it (default ``None``: one tile).
        hidden: width of each branch and of the hidden layers.
        depth: sine layers after the two branches.
        iterations: Adam steps (all tiles together).
        lr: Adam learning rate.
        omega_colour: SIREN frequency of the colour branch and the hidden layers.
        omega_xy: SIREN frequency of the position branch (lower: smoother over space).
        base: ``"global"`` (learn a correction to a global colour fit of the samples) or ``"none"``.
        global_degree: degree of that global fit.
        seed: seed of the weight initialisation.
    """

    name = "inf"
    metadata_kinds = ("sampled",)

    def __init__(self, tile: int = 64, margin: int | None = None, hidden: int = 32, depth: int = 1,
                 iterations: int = 300, lr: float = 2e-3, omega_colour: float = 10.0, omega_xy: float = 3.0,
                 base: str = "global", global_degree: int = 2, seed: int = 0):
        if base not in BASES:
            raise RawMambaError(f"inf: base must be one of {BASES}, got {base!r}")
        if tile < 4 or hidden < 1 or depth < 0 or iterations < 0 or lr <= 0 or (margin is not None and margin < 0):
            raise RawMambaError(f"inf: need tile >= 4, hidden >= 1, depth >= 0, iterations >= 0, lr > 0, margin >= 0; "
                                f"got {tile}, {hidden}, {depth}, {iterations}, {lr}, {margin}")
        self.tile, self.margin = tile, tile if margin is None else margin
        self.hidden, self.depth, self.iterations, self.lr = hidden, depth, iterations, lr
        self.omega_colour, self.omega_xy, self.base, self.seed = omega_colour, omega_xy, base, seed
        self.global_fit = GlobalColourFit(degree=global_degree)

    def _tiles(self, height: int, width: int) -> list[tuple[int, int, int, int]]:
        """``(y0, y1, x0, x1)`` of every tile, in raster order."""
        return [(y, min(y + self.tile, height), x, min(x + self.tile, width))
                for y in range(0, height, self.tile) for x in range(0, width, self.tile)]

    def _xy(self, rows: torch.Tensor, cols: torch.Tensor, box: tuple[int, int, int, int]) -> torch.Tensor:
        """Pixel positions relative to a tile: ``[-1, 1]`` spans the tile plus its margin."""
        y0, y1, x0, x1 = box
        half = self.tile / 2 + self.margin
        return torch.stack([(cols - (x0 + x1 - 1) / 2) / half, (rows - (y0 + y1 - 1) / 2) / half], dim=-1).float()

    def derender(self, srgb: torch.Tensor, metadata) -> torch.Tensor:
        self.check(srgb, metadata)
        mask = metadata.mask.reshape(metadata.mask.shape[-2:]) > 0
        rows, cols = torch.nonzero(mask, as_tuple=True)
        if rows.numel() < 10:
            raise RawMambaError(f"inf needs at least 10 samples, the metadata has {rows.numel()}")
        channels = metadata.raw.shape[-3]
        x_samples = metadata.srgb.reshape(3, *mask.shape)[:, rows, cols].T.double()
        y_samples = metadata.raw.reshape(channels, *mask.shape)[:, rows, cols].T.double()
        coefficients = self.global_fit.fit(x_samples, y_samples) if self.base == "global" else None

        def baseline(x: torch.Tensor) -> torch.Tensor:
            if coefficients is None:
                return torch.zeros(x.shape[0], channels, dtype=torch.float64)
            return polynomial_features(x.double(), self.global_fit.degree) @ coefficients

        target = (y_samples - baseline(x_samples)).float()
        height, width = mask.shape
        boxes = self._tiles(height, width)
        # Samples of each tile and its margin, padded to one length; padding has weight 0.
        members = [torch.nonzero((rows >= y0 - self.margin) & (rows < y1 + self.margin)
                                 & (cols >= x0 - self.margin) & (cols < x1 + self.margin))[:, 0]
                   for y0, y1, x0, x1 in boxes]
        longest = max(m.numel() for m in members)
        index = torch.zeros(len(boxes), longest, dtype=torch.long)
        weight = torch.zeros(len(boxes), longest, 1)
        xy = torch.zeros(len(boxes), longest, 2)
        for t, (m, box) in enumerate(zip(members, boxes, strict=True)):
            index[t, :m.numel()], weight[t, :m.numel()] = m, 1.0
            xy[t, :m.numel()] = self._xy(rows[m], cols[m], box)
        colour = x_samples.float()[index] * 2 - 1
        goal = target[index]
        counts = weight.sum(dim=1, keepdim=True).clamp(min=1)

        net = _TiledSiren(len(boxes), self.hidden, self.depth, channels, self.omega_colour, self.omega_xy,
                          torch.Generator().manual_seed(self.seed))
        optimiser = torch.optim.Adam(net.parameters(), lr=self.lr)
        with torch.enable_grad():
            for _ in range(self.iterations):
                optimiser.zero_grad()
                # Sum over tiles of each tile's own mean squared error: the tiles' fits stay independent.
                loss = (((net(colour, xy) - goal) ** 2 * weight) / counts).sum()
                loss.backward()
                optimiser.step()

        size = self.tile * self.tile
        pixel_xy = torch.zeros(len(boxes), size, 2)
        pixel_index = torch.zeros(len(boxes), size, dtype=torch.long)  # flat pixel index; padding repeats pixel 0
        for t, box in enumerate(boxes):
            y0, y1, x0, x1 = box
            grid_rows, grid_cols = torch.meshgrid(torch.arange(y0, y1), torch.arange(x0, x1), indexing="ij")
            count = grid_rows.numel()
            pixel_xy[t, :count] = self._xy(grid_rows.reshape(-1), grid_cols.reshape(-1), box)
            pixel_index[t, :count] = (grid_rows * width + grid_cols).reshape(-1)
        real = torch.zeros(len(boxes), size, dtype=torch.bool)
        for t, (y0, y1, x0, x1) in enumerate(boxes):
            real[t, :(y1 - y0) * (x1 - x0)] = True
        out = torch.empty(srgb.shape[0], height * width, channels, dtype=torch.float64)
        with torch.no_grad():
            for f, frame in enumerate(srgb):
                pixels = frame.reshape(3, -1).T.double()
                correction = net(pixels.float()[pixel_index] * 2 - 1, pixel_xy).double()
                out[f, pixel_index[real]] = correction[real] + baseline(pixels[pixel_index[real]])
        return out.permute(0, 2, 1).reshape(-1, channels, height, width).clamp(0, 1).to(srgb.dtype)
