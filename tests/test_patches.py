"""The 9 patch boxes of the paper, exactly, and the holistic face."""

from __future__ import annotations

import numpy as np
import pytest

from pattnet.errors import PattnetError
from pattnet.patches import PATCH_BOXES, crop_patches, crop_patches_batch, patch_figure


def test_boxes_exact():
    # MATLAB imcrop [x y 125 125], 1-based -> 0-based half-open (x-1, y-1, x+125, y+125)
    assert PATCH_BOXES == (
        (130, 124, 256, 250), (255, 124, 381, 250), (130, 159, 256, 285),
        (192, 159, 318, 285), (255, 159, 381, 285), (130, 249, 256, 375),
        (192, 249, 318, 375), (255, 249, 381, 375), (192, 299, 318, 425),
    )
    assert all(x1 - x0 == 126 and y1 - y0 == 126 for x0, y0, x1, y1 in PATCH_BOXES)


@pytest.mark.parametrize("k", range(9))
def test_each_box_cuts_exactly_its_pixels(k):
    x0, y0, x1, y1 = PATCH_BOXES[k]
    img = np.zeros((512, 512, 3), np.uint8)
    img[y0:y1, x0:x1] = 200
    # a one-pixel frame just outside the box that must not leak in
    img[y0 - 1, x0 - 1:x1 + 1] = img[y1, x0 - 1:x1 + 1] = 255
    img[y0 - 1:y1 + 1, x0 - 1] = img[y0 - 1:y1 + 1, x1] = 255
    patches, holistic = crop_patches(img)
    assert patches.shape == (9, 100, 100, 3) and patches.dtype == np.uint8
    assert (patches[k] == 200).all()
    assert holistic.shape == (200, 200, 3) and holistic.dtype == np.uint8


def test_registered_face_and_batch(astronaut):
    class Reg:
        image = astronaut

    p1, h1 = crop_patches(Reg())
    pb, hb = crop_patches_batch(np.stack([astronaut, astronaut[::-1].copy()]))
    assert pb.shape == (2, 9, 100, 100, 3) and hb.shape == (2, 200, 200, 3)
    assert (pb[0] == p1).all() and (hb[0] == h1).all()
    fig = patch_figure(astronaut)
    assert fig.shape[0] == 512 and fig.shape[2] == 3


def test_wrong_input():
    with pytest.raises(PattnetError):
        crop_patches(np.zeros((256, 256, 3), np.uint8))
    with pytest.raises(PattnetError):
        crop_patches(np.zeros((512, 512, 3), np.float32))
