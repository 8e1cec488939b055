"""A tiny synthetic video instance segmentation set in the raw YouTube-VIS layout.

The toy set lets the whole VIS pipeline (conversion, ``YouTubeVISDataset``,
Mask2Former-VIS training, ``YouTubeVISMetric``) run in seconds on a CPU. It is
written exactly like the official YouTube-VIS 2021 release::

    <out>/train/JPEGImages/<video_name>/00000.jpg
    <out>/train/instances.json   # videos, annotations (RLE per frame), categories
    <out>/valid/...              # optional, without annotations like the official valid

Each video shows 1-3 objects of three classes that differ in shape, colour and
size (``circle`` red and small, ``square`` green, ``triangle`` blue and large;
every attribute jittered) on a textured, noisy background. Objects move with a
near-constant velocity (and spin), pass in front of each other (the drawing order
is the depth order; masks are the *visible* parts, so overlapping objects have
disjoint masks) and some of them enter or leave the frame, in which case the
segmentation, bbox and area of the fully hidden frames are ``None`` as in the real
annotations. Everything is a deterministic function of ``seed``.

Only numpy, Pillow and pycocotools are used, so the module can be imported
without OpenMMLab.
"""
import json
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np
from PIL import Image
from pycocotools import mask as mask_util

TOY_YTVIS_CLASSES: Tuple[str, ...] = ('circle', 'square', 'triangle')

# Class-typical appearance: mean RGB colour and the range of the "radius" (circle
# radius, square half side, triangle circumradius) in pixels at 320x192.
_CLASS_STYLE = {
    'circle': dict(color=(205, 60, 50), radius=(11., 19.)),
    'square': dict(color=(60, 170, 70), radius=(13., 21.)),
    'triangle': dict(color=(60, 90, 210), radius=(22., 34.)),
}
_REFERENCE_SIZE = (320, 192)
_COLOR_JITTER = 30
_MOTION_MODES = ('inside', 'enter', 'leave')
_MOTION_PROBS = (0.55, 0.225, 0.225)


@dataclass
class ToyObject:
    """One moving object of a toy video.

    Args:
        label (int): Index into :data:`TOY_YTVIS_CLASSES`.
        color (np.ndarray): Mean RGB colour, shape (3,).
        radius (float): Circle radius, square half side or triangle circumradius.
        centers (np.ndarray): Center per frame (x, y), shape (T, 2).
        angles (np.ndarray): Rotation per frame in radians, shape (T,).
        mode (str): How it moves: 'inside', 'enter', 'leave' or 'cross' (path
            moved to cross an object behind or in front of it).
    """
    label: int
    color: np.ndarray
    radius: float
    centers: np.ndarray
    angles: np.ndarray
    mode: str = 'inside'

    @property
    def name(self) -> str:
        return TOY_YTVIS_CLASSES[self.label]

    @property
    def extent(self) -> float:
        """Largest distance of a shape pixel from the center."""
        return self.radius * (np.sqrt(2.) if self.name == 'square' else 1.)

    def vertices(self, t: int) -> np.ndarray:
        """Polygon vertices (x, y) of square/triangle at frame ``t``."""
        n = 4 if self.name == 'square' else 3
        r = self.extent
        phi = self.angles[t] + 2 * np.pi * np.arange(n) / n
        return self.centers[t] + r * np.stack([np.cos(phi), np.sin(phi)], 1)

    def amodal_mask(self, t: int, height: int, width: int) -> np.ndarray:
        """Full (un-occluded) mask of the object in frame ``t``, clipped to the image."""
        mask = np.zeros((height, width), dtype=bool)
        cx, cy = self.centers[t]
        r = self.extent
        x0, x1 = max(int(np.floor(cx - r)), 0), min(int(np.ceil(cx + r)) + 1, width)
        y0, y1 = max(int(np.floor(cy - r)), 0), min(int(np.ceil(cy + r)) + 1, height)
        if x0 >= x1 or y0 >= y1:
            return mask
        # Pixel centers of the shape's bounding window only.
        ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32) + 0.5
        if self.name == 'circle':
            mask[y0:y1, x0:x1] = (xs - cx)**2 + (ys - cy)**2 <= self.radius**2
            return mask
        verts = self.vertices(t)
        inside = np.ones(xs.shape, dtype=bool)
        for i in range(len(verts)):
            (vx0, vy0), (vx1, vy1) = verts[i], verts[(i + 1) % len(verts)]
            # Vertices go counter-clockwise in (x, y) maths coordinates, so the
            # interior lies left of every edge: cross product >= 0.
            inside &= (vx1 - vx0) * (ys - vy0) - (vy1 - vy0) * (xs - vx0) >= 0
        mask[y0:y1, x0:x1] = inside
        return mask


@dataclass
class ToyVideo:
    """A rendered toy video.

    Args:
        frames (np.ndarray): RGB frames, uint8, shape (T, H, W, 3).
        objects (list[ToyObject | ToyShape | ToyOutline]): Annotated objects from
            back (drawn first) to front (``ToyShape`` in the hard mode,
            ``ToyOutline`` in the closure mode).
        visible_masks (np.ndarray): Visible masks, bool, shape (K, T, H, W).
        amodal_masks (np.ndarray): Full masks ignoring occlusion, shape (K, T, H, W).
        distractors (list[ToyShape | ToyOutline]): Unannotated moving shapes
            (hard mode) or open outlines (closure mode).
    """
    frames: np.ndarray
    objects: List[ToyObject] = field(default_factory=list)
    visible_masks: Optional[np.ndarray] = None
    amodal_masks: Optional[np.ndarray] = None
    distractors: List['ToyShape'] = field(default_factory=list)


def _smooth_noise(rng: np.random.Generator, grid: Tuple[int, int], size: Tuple[int, int],
                  sigma: float, chroma: float = 0.3) -> np.ndarray:
    """Low-frequency RGB noise: a random (gh, gw) grid upsampled bicubically to size (W, H).

    Mostly luminance (shared by the channels); ``chroma`` scales the per-channel part.
    """
    gh, gw = grid
    coarse = rng.normal(0., sigma, size=(gh, gw, 1)) + rng.normal(
        0., sigma * chroma, size=(gh, gw, 3))
    coarse = coarse.astype(np.float32)
    channels = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(coarse[..., c])).resize(size, Image.BICUBIC))
        for c in range(3)
    ]
    return np.stack(channels, -1)


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A desaturated textured background (float32, H x W x 3)."""
    gray = rng.uniform(80., 170.)
    base = gray + rng.uniform(-18., 18., size=3)
    bg = np.broadcast_to(base, (height, width, 3)).astype(np.float32)
    bg = bg + _smooth_noise(rng, (4, 6), (width, height), 22.)
    bg = bg + _smooth_noise(rng, (height // 8, width // 8), (width, height), 9.)
    # A few soft stripes as distractor texture.
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    theta = rng.uniform(0, np.pi)
    period = rng.uniform(12., 40.)
    stripes = np.sin((xs * np.cos(theta) + ys * np.sin(theta)) * 2 * np.pi / period)
    bg = bg + rng.uniform(4., 12.) * stripes[..., None]
    return bg


def _sample_objects(rng: np.random.Generator, num_frames: int, height: int,
                    width: int) -> List[ToyObject]:
    """Sample 1-3 objects with trajectories; returned in back-to-front order."""
    scale = min(width / _REFERENCE_SIZE[0], height / _REFERENCE_SIZE[1])
    num_objects = int(rng.integers(1, 4))
    t = np.arange(num_frames, dtype=np.float64)
    objects = []
    for _ in range(num_objects):
        label = int(rng.integers(len(TOY_YTVIS_CLASSES)))
        style = _CLASS_STYLE[TOY_YTVIS_CLASSES[label]]
        color = np.clip(
            np.asarray(style['color'], np.float64) +
            rng.integers(-_COLOR_JITTER, _COLOR_JITTER + 1, size=3), 0, 255)
        radius = float(rng.uniform(*style['radius'])) * scale
        extent = radius * (np.sqrt(2.) if TOY_YTVIS_CLASSES[label] == 'square' else 1.)
        mode = str(rng.choice(_MOTION_MODES, p=_MOTION_PROBS))

        def inside_point():
            return np.array([rng.uniform(extent, width - extent),
                             rng.uniform(extent, height - extent)])

        start, end = inside_point(), inside_point()
        if mode != 'inside':
            # A point beyond a random border where the shape is fully invisible.
            side = int(rng.integers(4))
            margin = extent + rng.uniform(2., 20.) * scale
            outside = inside_point()
            if side == 0:
                outside[0] = -margin
            elif side == 1:
                outside[0] = width + margin
            elif side == 2:
                outside[1] = -margin
            else:
                outside[1] = height + margin
            if mode == 'enter':
                start = outside
            else:
                end = outside
        velocity = (end - start) / max(num_frames - 1, 1)
        centers = start + velocity * t[:, None]
        # "Constant-ish" velocity: a small smooth wobble on top of the straight line.
        centers = centers + np.cumsum(rng.normal(0., 0.4, size=(num_frames, 2)), 0)
        if mode == 'enter':
            centers[0] = start
        elif mode == 'leave':
            centers[-1] = end
        angles = rng.uniform(0, 2 * np.pi) + rng.uniform(-0.12, 0.12) * t
        objects.append(ToyObject(label, color, radius, centers, angles, mode))

    # Make some trajectories cross so that occlusion is common: move a later
    # object's path so it passes (near) the center of an earlier one mid-video.
    if num_objects > 1 and rng.random() < 0.7:
        j = int(rng.integers(1, num_objects))
        i = int(rng.integers(0, j))
        tc = int(rng.integers(num_frames // 4, max(num_frames // 4 + 1, 3 * num_frames // 4)))
        offset = rng.normal(0., 0.3 * objects[i].extent, size=2)
        shift = objects[i].centers[tc] + offset - objects[j].centers[tc]
        objects[j].centers = objects[j].centers + shift
        objects[j].mode = 'cross'

    order = rng.permutation(num_objects)  # random depth order
    return [objects[k] for k in order]


def _occlusion_masks(shapes, num_frames: int, height: int, width: int,
                     order=None, num_visible: Optional[int] = None):
    """Amodal masks (K, T, H, W) of ``shapes`` and the visible masks of the first
    ``num_visible`` (default all): painted in ``order`` (default list order), a later
    shape is nearer and hides the ones before it."""
    amodal = np.stack([
        np.stack([shape.amodal_mask(t, height, width) for t in range(num_frames)])
        for shape in shapes
    ])
    owner = np.full((num_frames, height, width), -1, dtype=np.int64)
    for k in (range(len(shapes)) if order is None else order):
        owner[amodal[k]] = k
    n = len(shapes) if num_visible is None else num_visible
    return amodal, np.stack([owner == k for k in range(n)])


def _resample_until_visible(sample, max_tries: int):
    """Call ``sample()`` (returning ``(objects, amodal, visible, *rest)``) up to
    ``max_tries`` times until every object is visible in at least one frame;
    returns that draw."""
    for _ in range(max_tries):
        drawn = sample()
        objects, visible = drawn[0], drawn[2]
        if visible.reshape(len(objects), -1).any(1).all():
            return drawn
    raise RuntimeError('could not sample a toy video whose objects are all visible')


def render_toy_video(rng: np.random.Generator,
                     num_frames: int = 8,
                     height: int = 192,
                     width: int = 320,
                     max_tries: int = 20) -> ToyVideo:
    """Render one toy video.

    Objects are painted back to front, so a pixel belongs to the front-most object
    covering it; ``visible_masks`` are therefore pairwise disjoint. A video is
    re-sampled (up to ``max_tries``) until every object is visible in at least one
    frame.

    Args:
        rng (np.random.Generator): Source of randomness.
        num_frames (int): Frames per video. Defaults to 8.
        height (int): Frame height. Defaults to 192.
        width (int): Frame width. Defaults to 320.
        max_tries (int): Attempts to sample objects that are all visible somewhere.
            Defaults to 20.

    Returns:
        ToyVideo: Frames, objects and their visible and amodal masks.
    """
    def sample():
        objects = _sample_objects(rng, num_frames, height, width)
        return (objects, *_occlusion_masks(objects, num_frames, height, width))

    objects, amodal, visible = _resample_until_visible(sample, max_tries)

    background = _background(rng, height, width)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    for t in range(num_frames):
        img = background + rng.normal(0., 6., size=(height, width, 3)).astype(np.float32)
        img = img + rng.uniform(-4., 4.)  # global flicker
        for k, obj in enumerate(objects):
            m = visible[k, t]
            if not m.any():
                continue
            cx, cy = obj.centers[t]
            # Radial shading plus pixel noise: the object is textured, not flat.
            dist = np.sqrt((xs[m] - cx)**2 + (ys[m] - cy)**2) / max(obj.extent, 1.)
            shade = 1.0 - 0.25 * dist[:, None]
            noise = rng.normal(0., 7., size=(int(m.sum()), 3))
            img[m] = obj.color[None] * shade + noise
        frames[t] = np.clip(img, 0, 255).astype(np.uint8)
    return ToyVideo(frames=frames, objects=objects, visible_masks=visible, amodal_masks=amodal)


# ----------------------------------------------------------------------------
# Hard mode: shape, not colour, tells objects from distractors.
# ----------------------------------------------------------------------------
# The annotated objects wear the class colours (red circle, green square, blue
# triangle, jittered, as in the easy mode); 1-2 unannotated distractors per
# video move like them and wear the colour of the class they imitate, with the
# same texture: a ring for the disc, a cross for the square, a hollow triangle
# for the triangle, often passing right next to an object. A single 16x16 patch
# of a disc and of a ring look alike, so only shape (several patches seen
# together, i.e. deeper blocks) tells an object. Static clutter (elongated
# ellipses and bars in yellow, magenta and cyan) adds saturated background.
# Harder variants did not train on the toy budget: a random palette per video
# with outlined shapes (losses flat over 230 iterations) and clutter in the
# class colours (AP 0.03 after 800 iterations).
TOY_YTVIS_MODES: Tuple[str, ...] = ('easy', 'hard', 'closure')
_HARD_TARGET_RADIUS = {'circle': (15., 24.), 'square': (12., 18.), 'triangle': (19., 30.)}
_HARD_DISTRACTORS = {'circle': 'ring', 'square': 'cross', 'triangle': 'hollow_triangle'}
_HARD_DISTRACTOR_RADIUS = {'ring': (15., 24.), 'cross': (16., 25.), 'hollow_triangle': (19., 30.)}
_HARD_LOOK_ALIKE = {v: k for k, v in _HARD_DISTRACTORS.items()}
_HARD_PALETTE = np.array([_CLASS_STYLE[name]['color'] for name in TOY_YTVIS_CLASSES], float)
# Clutter hues between the class colours (yellow, magenta, cyan).
_HARD_CLUTTER_PALETTE = np.array([(200, 185, 60), (185, 70, 185), (60, 180, 195)], float)


@dataclass
class ToyShape:
    """A shape of a hard-mode toy video (annotated object or distractor).

    Args:
        kind (str): 'circle', 'square', 'triangle' (annotated classes), 'ring',
            'cross', 'hollow_triangle' (distractors), 'ellipse' or 'bar' (clutter).
        label (int): Index into :data:`TOY_YTVIS_CLASSES`, -1 when unannotated.
        color (np.ndarray): Fill colour (RGB), shape (3,).
        radius (float): Circle/ring radius, square half side, triangle
            circumradius, cross half length, ellipse/bar half length.
        centers (np.ndarray): Center per frame (x, y), shape (T, 2).
        angles (np.ndarray): Rotation per frame in radians, shape (T,).
        mode (str): How it moves: 'inside', 'enter', 'leave', 'cross' or
            'static' (clutter).
        inner (float): Ring/hollow-triangle hole or cross arm width, and the
            ellipse/bar short axis, as a fraction of ``radius``. Defaults to 0.5.
        texture (np.ndarray, optional): (H, W, 3) texture that moves with it.
    """
    kind: str
    label: int
    color: np.ndarray
    radius: float
    centers: np.ndarray
    angles: np.ndarray
    mode: str = 'inside'
    inner: float = 0.5
    texture: Optional[np.ndarray] = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return TOY_YTVIS_CLASSES[self.label] if self.label >= 0 else self.kind

    @property
    def extent(self) -> float:
        """Largest distance of a shape pixel from the center."""
        if self.kind in ('square', 'cross'):
            return self.radius * np.sqrt(2.)
        return self.radius

    def amodal_mask(self, t: int, height: int, width: int) -> np.ndarray:
        """Full (un-occluded) mask in frame ``t``, clipped to the image."""
        return _shape_mask(self.kind, self.centers[t], self.radius, self.angles[t], self.inner,
                           height, width, self.extent)


def _in_triangle(u: np.ndarray, v: np.ndarray, circumradius: float) -> np.ndarray:
    """Inside a regular triangle with a vertex on +u (inradius = circumradius / 2)."""
    inside = np.ones(u.shape, dtype=bool)
    for k in range(3):
        phi = np.pi + 2 * np.pi * k / 3  # edge normals point away from the vertices
        inside &= u * np.cos(phi) + v * np.sin(phi) <= circumradius / 2
    return inside


def _shape_mask(kind: str, center: np.ndarray, radius: float, angle: float, inner: float,
                height: int, width: int, extent: float) -> np.ndarray:
    """Binary mask of one shape (pixel centers inside), (H, W)."""
    mask = np.zeros((height, width), dtype=bool)
    cx, cy = center
    x0, x1 = max(int(np.floor(cx - extent)), 0), min(int(np.ceil(cx + extent)) + 1, width)
    y0, y1 = max(int(np.floor(cy - extent)), 0), min(int(np.ceil(cy + extent)) + 1, height)
    if x0 >= x1 or y0 >= y1:
        return mask
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float64) + 0.5
    dx, dy = xs - cx, ys - cy
    c, s = np.cos(angle), np.sin(angle)
    u, v = c * dx + s * dy, -s * dx + c * dy  # object coordinates
    r = radius
    if kind == 'circle':
        inside = u**2 + v**2 <= r**2
    elif kind == 'ring':
        rho2 = u**2 + v**2
        inside = (rho2 <= r**2) & (rho2 >= (inner * r)**2)
    elif kind == 'square':
        inside = (np.abs(u) <= r) & (np.abs(v) <= r)
    elif kind == 'cross':
        w = inner * r
        inside = ((np.abs(u) <= r) & (np.abs(v) <= w)) | ((np.abs(v) <= r) & (np.abs(u) <= w))
    elif kind == 'triangle':
        inside = _in_triangle(u, v, r)
    elif kind == 'hollow_triangle':
        inside = _in_triangle(u, v, r) & ~_in_triangle(u, v, inner * r)
    elif kind == 'ellipse':
        inside = (u / r)**2 + (v / (inner * r))**2 <= 1
    elif kind == 'bar':
        inside = (np.abs(u) <= r) & (np.abs(v) <= inner * r)
    else:
        raise ValueError(f'unknown toy shape kind {kind!r}')
    mask[y0:y1, x0:x1] = inside
    return mask


def _texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """The shared region texture: soft blotches and fine grain (zero mean, H x W x 3)."""
    return (_smooth_noise(rng, (height // 24 + 2, width // 24 + 2), (width, height), 14.) +
            _smooth_noise(rng, (height // 6, width // 6), (width, height), 7.))


def _trajectory(rng: np.random.Generator, extent: float, num_frames: int, height: int,
                width: int, scale: float) -> Tuple[np.ndarray, str]:
    """Centers (T, 2) of a near-constant-velocity path and its mode (as the easy mode)."""
    mode = str(rng.choice(_MOTION_MODES, p=_MOTION_PROBS))

    def inside_point():
        return np.array([rng.uniform(extent, max(width - extent, extent + 1)),
                         rng.uniform(extent, max(height - extent, extent + 1))])

    start, end = inside_point(), inside_point()
    if mode != 'inside':
        side = int(rng.integers(4))
        margin = extent + rng.uniform(2., 20.) * scale
        outside = inside_point()
        if side < 2:
            outside[0] = -margin if side == 0 else width + margin
        else:
            outside[1] = -margin if side == 2 else height + margin
        start, end = (outside, end) if mode == 'enter' else (start, outside)
    t = np.arange(num_frames, dtype=np.float64)
    centers = start + (end - start) / max(num_frames - 1, 1) * t[:, None]
    centers = centers + np.cumsum(rng.normal(0., 0.4, size=(num_frames, 2)), 0)
    if mode == 'enter':
        centers[0] = start
    elif mode == 'leave':
        centers[-1] = end
    return centers, mode


def _sample_hard_shapes(rng: np.random.Generator, palette: np.ndarray, num_frames: int,
                        height: int, width: int) -> Tuple[List[ToyShape], List[ToyShape]]:
    """1-3 annotated objects and 1-2 distractors (look-alikes of the objects)."""
    scale = min(width / _REFERENCE_SIZE[0], height / _REFERENCE_SIZE[1])
    t = np.arange(num_frames, dtype=np.float64)

    def moving(kind, label, radius_range, inner, color):
        radius = float(rng.uniform(*radius_range)) * scale
        color = color + rng.integers(-_COLOR_JITTER, _COLOR_JITTER + 1, size=3)
        shape = ToyShape(kind, label, np.clip(color, 0, 255), radius, np.zeros((num_frames, 2)),
                         rng.uniform(0, 2 * np.pi) + rng.uniform(-0.12, 0.12) * t, inner=inner,
                         texture=_texture(rng, height, width))
        shape.centers, shape.mode = _trajectory(rng, shape.extent, num_frames, height, width,
                                                scale)
        return shape

    objects = []
    for _ in range(int(rng.integers(1, 4))):
        label = int(rng.integers(len(TOY_YTVIS_CLASSES)))
        name = TOY_YTVIS_CLASSES[label]
        objects.append(moving(name, label, _HARD_TARGET_RADIUS[name], 0.5, palette[label]))
    distractors = []
    for _ in range(int(rng.integers(1, 3))):
        if rng.random() < 0.7:  # the look-alike of an object of this video
            kind = _HARD_DISTRACTORS[objects[int(rng.integers(len(objects)))].name]
        else:
            kind = str(rng.choice(list(_HARD_DISTRACTOR_RADIUS)))
        inner = dict(ring=(0.45, 0.62), cross=(0.3, 0.42),
                     hollow_triangle=(0.42, 0.55))[kind]
        look_alike = TOY_YTVIS_CLASSES.index(_HARD_LOOK_ALIKE[kind])
        distractors.append(moving(kind, -1, _HARD_DISTRACTOR_RADIUS[kind],
                                  float(rng.uniform(*inner)), palette[look_alike]))
    # Crossing paths (occlusion) between objects, and a distractor passing by an object.
    if len(objects) > 1 and rng.random() < 0.7:
        j = int(rng.integers(1, len(objects)))
        i = int(rng.integers(0, j))
        tc = int(rng.integers(num_frames // 4, max(num_frames // 4 + 1, 3 * num_frames // 4)))
        shift = objects[i].centers[tc] + rng.normal(0., 0.3 * objects[i].extent, 2) - \
            objects[j].centers[tc]
        objects[j].centers = objects[j].centers + shift
        objects[j].mode = 'cross'
    if rng.random() < 0.5:
        d, o = distractors[0], objects[int(rng.integers(len(objects)))]
        tc = int(rng.integers(num_frames))
        gap = (d.extent + o.extent) * rng.uniform(1.0, 1.4)
        phi = rng.uniform(0, 2 * np.pi)
        d.centers = d.centers + (o.centers[tc] + gap * np.array([np.cos(phi), np.sin(phi)]) -
                                 d.centers[tc])
        d.mode = 'cross'
    return objects, distractors


def _hard_background(rng: np.random.Generator, palette: np.ndarray, height: int,
                     width: int) -> np.ndarray:
    """Grey texture with static clutter in yellow, magenta, cyan (float32, H x W x 3)."""
    scale = min(width / _REFERENCE_SIZE[0], height / _REFERENCE_SIZE[1])
    img = _background(rng, height, width)  # the easy mode's grey texture
    for _ in range(int(rng.integers(5, 9))):
        kind = 'ellipse' if rng.random() < 0.5 else 'bar'
        radius = float(rng.uniform(18., 70.)) * scale
        center = np.array([rng.uniform(-0.1, 1.1) * width, rng.uniform(-0.1, 1.1) * height])
        mask = _shape_mask(kind, center, radius, rng.uniform(0, np.pi),
                           float(rng.uniform(0.18, 0.55)), height, width, radius)
        color = _HARD_CLUTTER_PALETTE[int(rng.integers(len(_HARD_CLUTTER_PALETTE)))] + \
            rng.integers(-_COLOR_JITTER, _COLOR_JITTER + 1, size=3)
        img[mask] = color + _texture(rng, height, width)[mask]
    return img.astype(np.float32)


def render_hard_toy_video(rng: np.random.Generator,
                          num_frames: int = 8,
                          height: int = 192,
                          width: int = 320,
                          max_tries: int = 20) -> ToyVideo:
    """Render one hard-mode toy video (see the notes above :class:`ToyShape`).

    Objects and distractors are painted back to front over static clutter on
    the easy mode's grey texture, in the class colours and with the same kind
    of texture (moving with the shape); the masks are the visible parts of the
    annotated objects (a distractor in front occludes an object).

    Args:
        rng (np.random.Generator): Source of randomness.
        num_frames (int): Frames per video. Defaults to 8.
        height (int): Frame height. Defaults to 192.
        width (int): Frame width. Defaults to 320.
        max_tries (int): Attempts to sample objects that are all visible somewhere.
            Defaults to 20.

    Returns:
        ToyVideo: Frames, annotated objects, their visible and amodal masks and
        the distractors.
    """
    palette = _HARD_PALETTE

    def sample():
        objects, distractors = _sample_hard_shapes(rng, palette, num_frames, height, width)
        order = rng.permutation(len(objects) + len(distractors))  # depth: later = nearer
        return (objects, *_occlusion_masks(objects + distractors, num_frames, height, width,
                                           order, len(objects)), distractors, order)

    objects, amodal, visible, distractors, order = _resample_until_visible(sample, max_tries)
    shapes = objects + distractors

    background = _hard_background(rng, palette, height, width)
    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    for t in range(num_frames):
        img = background.copy()
        for k in order:
            shape = shapes[k]
            m = amodal[k, t]
            if not m.any():
                continue
            # The texture moves with the shape (integer shift of its own texture).
            shift = np.round(shape.centers[t] - shape.centers[0]).astype(int)
            tex = np.roll(shape.texture, (shift[1], shift[0]), axis=(0, 1))
            img[m] = shape.color + tex[m]
        img = img + rng.normal(0., 6., size=(height, width, 3)) + rng.uniform(-4., 4.)
        frames[t] = np.clip(img, 0, 255).astype(np.uint8)
    obj_order = [k for k in order if k < len(objects)]
    return ToyVideo(
        frames=frames, objects=[objects[k] for k in obj_order],
        visible_masks=visible[obj_order], amodal_masks=amodal[obj_order],
        distractors=distractors)


# ----------------------------------------------------------------------------
# Closure mode: only closedness of an outline tells an object.
# ----------------------------------------------------------------------------
# Every video has one static texture that continues inside the objects and one
# stroke colour and width shared by everything drawn on it. An object is a
# closed outline (circle, square, triangle = the classes); its mask is the
# filled interior (the outline included), which shows the background texture
# and hides the strokes behind it. Unannotated clutter is drawn with the same
# stroke: the same outlines with a gap (an arc, a square or triangle with a
# wedge cut out) and open polylines, moving like the objects and always behind
# them. Short static scribbles in the same stroke, denser in some regions than
# in others, belong to the texture (so they continue inside the objects). A
# 16x16 patch of an interior shows the same texture as the background and a
# patch of an outline shows the same stroke as the clutter, so only the whole
# outline (several patches together) tells whether a region is closed.
_CLOSURE_RADIUS = {'circle': (20., 38.), 'square': (17., 28.), 'triangle': (30., 48.)}
_CLOSURE_CLUTTER = ('arc', 'open_square', 'open_triangle', 'polyline')
_CLOSURE_CLUTTER_PROBS = (0.25, 0.2, 0.2, 0.35)
_CLOSURE_BROKEN = {'arc': 'circle', 'open_square': 'square', 'open_triangle': 'triangle'}
_CLOSURE_GAP_DEG = (70., 140.)
_CLOSURE_NUM_CLUTTER = (4, 9)  # [low, high)
_CLOSURE_SCRIBBLE_RADIUS = (5., 12.)
_CLOSURE_SCRIBBLE_DENSITY = (1.4, 2.2)  # most scribbles per 1000 pixels


def _segment_distance(xs: np.ndarray, ys: np.ndarray, points: np.ndarray,
                      closed: bool) -> np.ndarray:
    """Distance of the points (xs, ys) to a polyline (closed: a polygon outline)."""
    ends = np.concatenate([points[1:], points[:1]]) if closed else points[1:]
    dist = np.full(xs.shape, np.inf)
    for (ax, ay), (bx, by) in zip(points[:len(ends)], ends):
        ex, ey = bx - ax, by - ay
        h = np.clip(((xs - ax) * ex + (ys - ay) * ey) / max(ex * ex + ey * ey, 1e-12), 0., 1.)
        dist = np.minimum(dist, np.hypot(xs - ax - h * ex, ys - ay - h * ey))
    return dist


@dataclass
class ToyOutline:
    """A stroked outline of a closure-mode toy video (object or clutter).

    Args:
        kind (str): 'circle', 'square', 'triangle' (closed, annotated), 'arc',
            'open_square', 'open_triangle' (the same with a gap) or 'polyline'.
        label (int): Index into :data:`TOY_YTVIS_CLASSES`, -1 for clutter.
        radius (float): Circle radius, square half side or triangle
            circumradius; for a polyline the radius its vertices lie within.
        centers (np.ndarray): Center per frame (x, y), shape (T, 2).
        angles (np.ndarray): Rotation per frame in radians, shape (T,).
        stroke (float): Stroke width in pixels.
        gap (float): Angular width of the gap in radians (0: closed).
            Defaults to 0.
        points (np.ndarray, optional): Polyline vertices in object
            coordinates, shape (P, 2).
        mode (str): How it moves: 'inside', 'enter', 'leave' or 'cross'.
            Defaults to 'inside'.
    """
    kind: str
    label: int
    radius: float
    centers: np.ndarray
    angles: np.ndarray
    stroke: float
    gap: float = 0.
    points: Optional[np.ndarray] = None
    mode: str = 'inside'

    @property
    def name(self) -> str:
        return TOY_YTVIS_CLASSES[self.label] if self.label >= 0 else self.kind

    @property
    def base(self) -> str:
        """The closed shape this outline follows ('polyline' for a polyline)."""
        return _CLOSURE_BROKEN.get(self.kind, self.kind)

    @property
    def extent(self) -> float:
        """Largest distance of a stroke pixel from the center."""
        r = self.radius * (np.sqrt(2.) if self.base == 'square' else 1.)
        return r + self.stroke / 2 + 1.

    def _window(self, t: int, height: int,
                width: int) -> Optional[Tuple[slice, slice, np.ndarray, np.ndarray]]:
        cx, cy = self.centers[t]
        e = self.extent
        x0, x1 = max(int(np.floor(cx - e)), 0), min(int(np.ceil(cx + e)) + 1, width)
        y0, y1 = max(int(np.floor(cy - e)), 0), min(int(np.ceil(cy + e)) + 1, height)
        if x0 >= x1 or y0 >= y1:
            return None
        ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float64) + 0.5
        c, s = np.cos(self.angles[t]), np.sin(self.angles[t])
        dx, dy = xs - cx, ys - cy
        return slice(y0, y1), slice(x0, x1), c * dx + s * dy, -s * dx + c * dy

    def _vertices(self) -> np.ndarray:
        """Vertices in object coordinates (as :func:`_shape_mask` places them)."""
        if self.base == 'polyline':
            return self.points
        if self.base == 'square':
            phi = np.pi / 4 + np.pi / 2 * np.arange(4)
            r = self.radius * np.sqrt(2.)
        else:
            phi = 2 * np.pi * np.arange(3) / 3
            r = self.radius
        return r * np.stack([np.cos(phi), np.sin(phi)], 1)

    def stroke_mask(self, t: int, height: int, width: int) -> np.ndarray:
        """Pixels of the drawn stroke in frame ``t`` (gap excluded), (H, W)."""
        mask = np.zeros((height, width), dtype=bool)
        window = self._window(t, height, width)
        if window is None:
            return mask
        rows, cols, u, v = window
        if self.base == 'circle':
            dist = np.abs(np.hypot(u, v) - self.radius)
        else:
            dist = _segment_distance(u, v, self._vertices(), closed=self.base != 'polyline')
        stroke = dist <= self.stroke / 2
        if self.gap > 0:  # a wedge around +v is cut out
            stroke &= np.abs(np.arctan2(u, v)) > self.gap / 2
        mask[rows, cols] = stroke
        return mask

    def amodal_mask(self, t: int, height: int, width: int) -> np.ndarray:
        """Filled interior with its outline for a closed shape, else the stroke, (H, W)."""
        stroke = self.stroke_mask(t, height, width)
        if self.gap > 0 or self.base == 'polyline':
            return stroke
        inner = _shape_mask(self.base, self.centers[t], self.radius, self.angles[t], 0.5,
                            height, width, self.extent)
        return inner | stroke


def _sample_outlines(rng: np.random.Generator, num_frames: int, height: int,
                     width: int) -> Tuple[List[ToyOutline], List[ToyOutline]]:
    """1-3 closed outlines (objects) and 3-6 open ones (clutter), one stroke width."""
    scale = min(width / _REFERENCE_SIZE[0], height / _REFERENCE_SIZE[1])
    stroke = max(float(rng.uniform(2., 3.5)) * scale, 1.5)
    t = np.arange(num_frames, dtype=np.float64)

    def moving(kind, label):
        base = _CLOSURE_BROKEN.get(kind, kind)
        radius_range = _CLOSURE_RADIUS['circle' if base == 'polyline' else base]
        radius = float(rng.uniform(*radius_range)) * scale
        gap, points = 0., None
        if kind in _CLOSURE_BROKEN:
            gap = float(np.deg2rad(rng.uniform(*_CLOSURE_GAP_DEG)))
        elif kind == 'polyline':
            n = int(rng.integers(3, 6))
            phi = np.sort(rng.uniform(0, 2 * np.pi, n))
            rho = radius * rng.uniform(0.3, 1., n)
            points = np.stack([rho * np.cos(phi), rho * np.sin(phi)], 1)
        shape = ToyOutline(kind, label, radius, np.zeros((num_frames, 2)),
                           rng.uniform(0, 2 * np.pi) + rng.uniform(-0.12, 0.12) * t, stroke,
                           gap=gap, points=points)
        shape.centers, shape.mode = _trajectory(rng, shape.extent, num_frames, height, width,
                                                scale)
        return shape

    objects = []
    for _ in range(int(rng.integers(1, 4))):
        label = int(rng.integers(len(TOY_YTVIS_CLASSES)))
        objects.append(moving(TOY_YTVIS_CLASSES[label], label))
    clutter = [
        moving(str(rng.choice(_CLOSURE_CLUTTER, p=_CLOSURE_CLUTTER_PROBS)), -1)
        for _ in range(int(rng.integers(*_CLOSURE_NUM_CLUTTER)))
    ]
    if len(objects) > 1 and rng.random() < 0.7:  # crossing paths: occlusion
        j = int(rng.integers(1, len(objects)))
        i = int(rng.integers(0, j))
        tc = int(rng.integers(num_frames // 4, max(num_frames // 4 + 1, 3 * num_frames // 4)))
        shift = objects[i].centers[tc] + rng.normal(0., 0.3 * objects[i].extent, 2) - \
            objects[j].centers[tc]
        objects[j].centers = objects[j].centers + shift
        objects[j].mode = 'cross'
    return objects, clutter


def _scribbles(rng: np.random.Generator, height: int, width: int, stroke: float,
               density: float) -> np.ndarray:
    """Static short open strokes (arcs, polylines) over the whole frame, (H, W) bool.

    ``density`` is the largest number of scribbles per 1000 pixels; a smooth
    random field thins them out, so some regions are dense and others bare.
    """
    scale = min(width / _REFERENCE_SIZE[0], height / _REFERENCE_SIZE[1])
    mask = np.zeros((height, width), dtype=bool)
    frozen = np.zeros(1)
    field = _smooth_noise(rng, (3, 5), (width, height), 1., chroma=0.)[..., 0]
    field = np.clip((field - field.min()) / max(float(np.ptp(field)), 1e-6), 0., 1.)
    for _ in range(int(round(density * height * width / 1000.))):
        center = np.array([[rng.uniform(0, width), rng.uniform(0, height)]])
        if rng.random() > field[min(int(center[0, 1]), height - 1),
                                min(int(center[0, 0]), width - 1)]:
            continue
        radius = float(rng.uniform(*_CLOSURE_SCRIBBLE_RADIUS)) * scale
        if rng.random() < 0.5:
            shape = ToyOutline('arc', -1, radius, center, frozen + rng.uniform(0, 2 * np.pi),
                               stroke, gap=float(np.deg2rad(rng.uniform(100., 240.))))
        else:
            n = int(rng.integers(2, 4))
            phi = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.uniform(0.6, 2.2, n))
            points = radius * np.stack([np.cos(phi), np.sin(phi)], 1)
            shape = ToyOutline('polyline', -1, radius, center, frozen, stroke, points=points)
        mask |= shape.stroke_mask(0, height, width)
    return mask


def render_closure_toy_video(rng: np.random.Generator,
                             num_frames: int = 8,
                             height: int = 192,
                             width: int = 320,
                             max_tries: int = 20) -> ToyVideo:
    """Render one closure-mode toy video (see the notes above :class:`ToyOutline`).

    The background is one static texture (the easy mode's grey texture plus the
    hard mode's blotches) with static scribbles in the ink colour, which is
    light on a dark texture and dark on a light one. The clutter strokes are
    drawn first, then the objects back to front: each shows the background
    texture inside (hiding the strokes behind it) and its closed outline. The
    masks are the visible parts of the filled objects.

    Args:
        rng (np.random.Generator): Source of randomness.
        num_frames (int): Frames per video. Defaults to 8.
        height (int): Frame height. Defaults to 192.
        width (int): Frame width. Defaults to 320.
        max_tries (int): Attempts to sample objects that are all visible somewhere.
            Defaults to 20.

    Returns:
        ToyVideo: Frames, annotated objects (back to front), their visible and
        amodal masks and the clutter (as ``distractors``).
    """
    def sample():
        objects, clutter = _sample_outlines(rng, num_frames, height, width)
        return (objects, *_occlusion_masks(objects, num_frames, height, width), clutter)

    objects, amodal, visible, clutter = _resample_until_visible(sample, max_tries)

    background = _background(rng, height, width) + _texture(rng, height, width)
    stroke = objects[0].stroke
    ink_layer = _scribbles(rng, height, width, stroke,
                           float(rng.uniform(*_CLOSURE_SCRIBBLE_DENSITY)))
    level = background.mean((0, 1))
    sign = 1. if level.mean() < 128 else -1.  # light ink on dark texture, dark on light
    ink = np.clip(level + sign * rng.uniform(70., 100.) + rng.uniform(-20., 20., 3), 0, 255)
    background[ink_layer] = ink
    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    for t in range(num_frames):
        img = background.copy()
        for shape in clutter:
            img[shape.stroke_mask(t, height, width)] = ink
        for k, obj in enumerate(objects):
            img[amodal[k, t]] = background[amodal[k, t]]
            img[obj.stroke_mask(t, height, width)] = ink
        img = img + rng.normal(0., 6., size=(height, width, 3)) + rng.uniform(-4., 4.)
        frames[t] = np.clip(img, 0, 255).astype(np.uint8)
    return ToyVideo(frames=frames, objects=objects, visible_masks=visible, amodal_masks=amodal,
                    distractors=clutter)


def encode_rle(mask: np.ndarray) -> Dict:
    """Compressed COCO RLE of a binary mask with ``counts`` as ``str`` (JSON-ready)."""
    rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle['counts'] = rle['counts'].decode('ascii')
    return rle


def _write_split(split_dir: str, rng: np.random.Generator, num_videos: int, num_frames: int,
                 height: int, width: int, first_video_id: int, with_annotations: bool,
                 jpeg_quality: int, name_prefix: str, mode: str = 'easy') -> Dict:
    """Render ``num_videos`` videos into ``split_dir`` and return the raw json dict."""
    render = dict(easy=render_toy_video, hard=render_hard_toy_video,
                  closure=render_closure_toy_video)[mode]
    videos, annotations = [], []
    ann_id = 1
    img_root = osp.join(split_dir, 'JPEGImages')
    for v in range(num_videos):
        video_id = first_video_id + v
        video_name = f'{name_prefix}{video_id:05d}'
        video = render(rng, num_frames, height, width)
        os.makedirs(osp.join(img_root, video_name), exist_ok=True)
        file_names = []
        for t in range(num_frames):
            file_name = f'{video_name}/{t:05d}.jpg'
            Image.fromarray(video.frames[t]).save(
                osp.join(img_root, file_name), quality=jpeg_quality)
            file_names.append(file_name)
        videos.append(
            dict(id=video_id, width=width, height=height, length=num_frames,
                 file_names=file_names))
        if not with_annotations:
            continue
        for k, obj in enumerate(video.objects):
            segms, bboxes, areas = [], [], []
            for t in range(num_frames):
                m = video.visible_masks[k, t]
                if not m.any():
                    segms.append(None)
                    bboxes.append(None)
                    areas.append(None)
                    continue
                rle = encode_rle(m)
                segms.append(rle)
                bboxes.append([float(x) for x in mask_util.toBbox(rle)])
                areas.append(int(m.sum()))
            annotations.append(
                dict(id=ann_id, video_id=video_id, category_id=obj.label + 1,
                     segmentations=segms, areas=areas, bboxes=bboxes, iscrowd=0,
                     height=height, width=width, length=num_frames))
            ann_id += 1
    categories = [
        dict(id=i + 1, name=name, supercategory='shape')
        for i, name in enumerate(TOY_YTVIS_CLASSES)
    ]
    raw = dict(
        info=dict(description='mmsparse toy YouTube-VIS (synthetic shapes)', version='2021'),
        licenses=[], videos=videos, categories=categories)
    if mode != 'easy':
        raw['info']['mode'] = mode
    if with_annotations:
        raw['annotations'] = annotations
    with open(osp.join(split_dir, 'instances.json'), 'w') as f:
        json.dump(raw, f)
    return raw


def make_toy_ytvis(out_dir: str,
                   num_videos: int = 48,
                   num_frames: int = 8,
                   width: int = 320,
                   height: int = 192,
                   seed: int = 0,
                   num_valid_videos: int = 0,
                   jpeg_quality: int = 90,
                   mode: str = 'easy') -> Dict:
    """Write a toy dataset in the raw YouTube-VIS 2021 layout.

    Args:
        out_dir (str): Dataset root; ``train/`` (and ``valid/``) are created in it.
        num_videos (int): Number of annotated train videos. Defaults to 48.
        num_frames (int): Frames per video. Defaults to 8.
        width (int): Frame width. Defaults to 320.
        height (int): Frame height. Defaults to 192.
        seed (int): Seed; the output is a deterministic function of all arguments.
            Defaults to 0.
        num_valid_videos (int): Videos of a ``valid`` split written without
            annotations, like the official valid set. Defaults to 0 (none).
        jpeg_quality (int): JPEG quality of the frames. Defaults to 90.
        mode (str): ``'easy'``: class-coloured shapes on a grey background (the
            demo and tests); ``'hard'``: moving unannotated look-alikes (ring,
            cross, hollow triangle) in the colours of the classes they imitate
            and saturated clutter, so only shape tells an object (see
            :func:`render_hard_toy_video`); ``'closure'``: closed outlines
            (the objects, masks = filled interiors) among open ones drawn with
            the same stroke on one texture, so only closure tells an object (see
            :func:`render_closure_toy_video`). Defaults to ``'easy'``.

    Returns:
        dict: Summary with the written json paths and counts (videos, frames,
        instances, annotated frames, frames where an instance is absent).
    """
    if mode not in TOY_YTVIS_MODES:
        raise ValueError(f'mode must be one of {TOY_YTVIS_MODES}, got {mode!r}')
    if num_videos < 1 or num_frames < 2:
        raise ValueError(f'num_videos must be >= 1 and num_frames >= 2, got '
                         f'num_videos={num_videos}, num_frames={num_frames}')
    if num_valid_videos < 0:
        raise ValueError(f'num_valid_videos must be >= 0, got {num_valid_videos}')
    if min(width, height) < 32:
        raise ValueError(f'width and height must be >= 32 (mmdet drops smaller frames), '
                         f'got {width}x{height}')
    train_rng, valid_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    summary = dict(out_dir=out_dir, files=[])
    splits = [('train', train_rng, num_videos, True)]
    if num_valid_videos:
        splits.append(('valid', valid_rng, num_valid_videos, False))
    for split, rng, n, with_ann in splits:
        split_dir = osp.join(out_dir, split)
        os.makedirs(split_dir, exist_ok=True)
        first_id = 1 if split == 'train' else num_videos + 1
        raw = _write_split(split_dir, rng, n, num_frames, height, width, first_id, with_ann,
                           jpeg_quality, name_prefix=f'toy_{split}_', mode=mode)
        summary['files'].append(osp.join(split_dir, 'instances.json'))
        summary[f'{split}_videos'] = len(raw['videos'])
        summary[f'{split}_frames'] = len(raw['videos']) * num_frames
        if with_ann:
            anns = raw['annotations']
            summary['instances'] = len(anns)
            segms = [s for a in anns for s in a['segmentations']]
            summary['annotated_frames'] = sum(s is not None for s in segms)
            summary['absent_frames'] = sum(s is None for s in segms)
    return summary
