"""The simulator's known anatomy, written for ``--derivatives anat=``: right place, right names."""

from __future__ import annotations

import json

import ants
import nibabel as nb
import numpy as np

from aslmig.anat.quality import check_brain_mask
from aslmig.bids.anat_derivatives import find_anat_derivatives
from aslmig.sim import signal
from aslmig.sim.anatomy import grid_for, head_matrix, load_template_anatomy, resample_channels
from aslmig.sim.io import write_nifti
from aslmig.sim.truth_anatomy import write_participant_anatomy

#: A head 8 mm right, 6 mm back, nodded 6 deg and turned 4 deg, 3 % larger than the template.
POSE = np.array([8.0, -6.0, 4.0, np.deg2rad(6.0), 0.0, np.deg2rad(4.0)])
SCALE = 1.03


def _correlation(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> float:
    return float(np.corrcoef(a[where], b[where])[0, 1])


def test_truth_anatomy_maps_the_head_onto_the_template_and_back(tmp_path):
    template = load_template_anatomy()
    shape, affine = grid_for(2.0)
    head = head_matrix(POSE, SCALE)
    image = resample_channels(
        signal.t1w_channels(template.gm, template.wm, template.csf),
        template.affine, head, shape, affine, subsamples=1,
    )[0]  # fmt: skip
    t1w = write_nifti(tmp_path / "raw_T1w.nii.gz", image + 100.0, affine)
    root = tmp_path / "truth"
    root.mkdir()
    (root / "dataset_description.json").write_text(
        json.dumps({"Name": "truth", "DatasetType": "derivative",
                    "GeneratedBy": [{"Name": "aslmig simulate", "Version": "0"}]})
    )  # fmt: skip
    write_participant_anatomy(root / "sub-01" / "anat", "sub-01", t1w, template, POSE, SCALE, 2.0)
    found = find_anat_derivatives(root, "01", "1", template.space)

    # compare on the template grid, through files (ants reads the NIfTI headers)
    template_file = write_nifti(tmp_path / "template_gm.nii.gz", template.gm, template.affine)
    reference = ants.image_read(str(template_file))
    gm = ants.image_read(str(found.gm))
    warped = ants.apply_transforms(reference, gm, [str(found.to_template)]).numpy()
    unmoved = ants.apply_transforms(reference, gm, []).numpy()
    inside = (template.gm > 0.05) | (warped > 0.05)
    # measured 0.974 with the transform, 0.16 without (the pose is what the transform undoes)
    assert _correlation(warped, template.gm, inside) > 0.95
    assert _correlation(unmoved, template.gm, inside) < 0.5

    back = ants.apply_transforms(
        ants.image_read(str(found.t1w)), reference, [str(found.from_template)]
    ).numpy()
    native = nb.load(found.gm).get_fdata()
    assert _correlation(back, native, (native > 0.05) | (back > 0.05)) > 0.99

    check = check_brain_mask(found.t1w, found.mask)
    assert check.warnings == ()
    assert 1400 < check.volume_ml < 2000
