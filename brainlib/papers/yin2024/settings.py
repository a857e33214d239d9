"""Settings of Yin et al. (2024, Sci Rep): one frozen dataclass.

The paper states the networks (ResNet-10 with deformable convolution in stages 2-4, TCCBAM,
Mask R-CNN with the eq. 12 mask loss), Table 1, Adam with learning rate 0.001, batch 16,
inputs 256 then 224, flips and brightness/contrast augmentation. It is loosely written, and
every choice it forces on us is a reading (``ours``) listed here: the four classes (its Fig. 9
names lung diseases), how images are drawn from CQ500 (per-scan reads) and DeepLesion (no
normal slices), the split, epochs, the mask-loss weight, the detection threshold.
Class defaults are the ``full`` profile; ``quick`` and ``smoke`` shrink sizes for a 2-core CPU.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

from brainlib.experiment import Settings, ours, paper, runtime

PAPER = "yin2024"
DATASETS: tuple[str, ...] = ("cq500", "deeplesion")
_PHANTOM = "embedded phantoms (no real data offline)"
_SETUP = "Sec. Model training / experimental setup"


@dataclass(frozen=True)
class Yin2024Settings(Settings):
    """Every setting of the classification (Tables 2-4) and Mask R-CNN (Tables 5-6) runs."""

    # data
    dataset: str = paper("both", "Sec. Experiment and results: 'CQ500 and DeepLesion' (cq500 | deeplesion | both)")
    max_images: Any = runtime(None, "cap on the images used per dataset (None: all selected)")
    images_per_class: Any = ours(None, "the paper 'randomly selects 160 normal and abnormal images' "
                                 "without saying how many per class: None keeps every selected "
                                 "image, a number caps each class (seeded)")
    images_per_scan: Any = ours(None, "None keeps every selected image; a number keeps at most that "
                                "many images of each class from one scan (seeded), so a class is not "
                                "the neighbouring slices of a few scans")
    cq500_rule: str = ours("mask area", "CQ500 reads are per scan; an image's class is the class "
                           "whose lesion covers most pixels of the slice (phantom sidecar masks; "
                           "a box CSV on real data); normal = a slice with no lesion pixel of any "
                           "kind (the scan may hold lesions elsewhere)")
    cq500_normal_per_scan: int = ours(3, "lesion-free slices drawn per scan for 'normal' (middle "
                                      "third of the head; seeded), so normal does not swamp the set")
    deeplesion_normal: str = ours("series slices outside every Slice_range +-2", "DeepLesion has no "
                                  "normal key slices: 'normal' = other slices of the same series")
    deeplesion_types: tuple = ours((5, 4, 6), "three lesion classes: coarse types lung (5), liver "
                                   "(4), kidney (6); key slices of other types are not used")
    split: tuple = ours((0.6, 0.2, 0.2), "train / validation / test by patient (no split in the paper)")
    preprocessed_size: int = paper(256, "Sec. Image preprocessing: '256 x 256 pixel'")
    image_size: int = paper(224, _SETUP + ": 'input image size 224 x 224'")
    stretch_cq500: tuple = ours(((-1000, 0.0), (0, 0.1), (80, 0.9), (1500, 1.0)), "'grayscale "
                                "segmental stretching': piecewise-linear HU -> grey, brain range 0-80 "
                                "HU stretched over 80 % of the grey levels")
    stretch_deeplesion: tuple = ours(((-1000, 0.0), (-200, 0.3), (300, 0.9), (1500, 1.0)),
                                     "as for CQ500 with a body soft-tissue range (-200..300 HU)")
    crop: str = paper("crop to the head / body", "Sec. Image preprocessing: 'remove the background "
                      "area' (bounding square of HU > -500, our rule)")
    augment: str = paper("hflip, vflip, brightness, contrast", _SETUP + " (saturation has no "
                         "meaning on grey CT: not applied)")
    # classification networks (Tables 1-4)
    n_classes: int = ours(4, "Fig. 9 has four classes; Table 1's softmax has 3")
    widths: tuple = paper((64, 128, 256, 512), "Table 1")
    dropout: float = paper(0.5, "Table 1")
    reduction: int = ours(16, "attention MLP reduction (CBAM's default)")
    depths: tuple = paper((50, 34, 18, 10), "Tables 2-4")
    # training
    lr: float = paper(1e-3, _SETUP + ": Adam, learning rate 0.001 (the 'model training' paragraph "
                      "also names 0.1)")
    lr_decay: float = ours(0.0, "the paper's 'learning rate decay 0.001' does not say its form; "
                           "constant learning rate")
    batch_size: int = paper(16, _SETUP)
    max_iterations: int = paper(1000, "Sec. Model training: 'maximum iteration number is 1000'")
    epochs: Any = ours(None, "None: ceil(max_iterations / steps per epoch); best epoch by "
                       "validation accuracy")
    target_error: float = ours(0.0, "the stated training target error 0.01 is not used to stop")
    # Mask R-CNN (Tables 5-6)
    fpn_channels: int = ours(256, "torchvision's FPN width")
    head_dim: int = ours(1024, "torchvision's box-head width")
    mask_dim: int = ours(256, "torchvision's mask-head width")
    rpn_proposals: tuple = ours((2000, 2000, 1000, 1000), "RPN pre/post-NMS proposals in training "
                                "and test (torchvision's defaults)")
    anchor_sizes: tuple = ours((16, 32, 64, 128, 256), "RPN anchor side(s) per FPN level (an int "
                               "or a tuple per level), halved from torchvision's 800-px defaults for 224-px "
                               "inputs (not in the paper)")
    anchor_ratios: tuple = ours((0.5, 1.0, 2.0), "anchor height / width ratios on every level "
                                "(torchvision's defaults; quick lesion boxes have h/w 0.7-6: with "
                                "(0.25, 0.5, 1, 2, 4) and box_batch 8 the quick control was 0.677 on "
                                "seed 0 but 0.423 on seed 1, not adopted)")
    rpn_fg_iou: float = ours(0.7, "IoU from which an anchor is a positive for the RPN (torchvision's default)")
    box_iou: tuple = ours((0.5, 0.5), "RoI head: a proposal is a positive from IoU fg with a lesion, a "
                          "negative below IoU bg, ignored in between (torchvision's defaults; "
                          "(0.5, 0.3) with box_batch 8 and five anchor ratios: quick control 0.452 / "
                          "0.615 on seeds 0 / 1, not adopted)")
    box_batch: int = ours(512, "sampled RoIs per image (torchvision's default)")
    box_positive_fraction: float = ours(0.25, "share of positive RoIs in each sample (torchvision's default)")
    detections_per_img: int = ours(100, "detections kept per image (torchvision's default)")
    loss_weights: tuple = ours((1.0, 1.0), "alpha, beta of eq. 13 (not given); RPN losses weight 1")
    mask_mu: float = ours(0.5, "eq. 12 weight mu of BCE vs the IoU-style loss; not given")
    det_init: str = ours("classifier", "the paper does not say how the detector's backbone starts; "
                         "'classifier': from the trained Table 1 classifier of the same variant and run "
                         "(train split only; ResNet-10 for Mask RCNN, DResNet-10 for +DC, TCCBAM-ResNet-10 "
                         "for +AM, TCCBAM-DResNet-10 for +DC+AM), as a detector's backbone normally "
                         "starts from ImageNet weights; 'random': from scratch (did not fit its own "
                         "training images in the CPU budget)")
    det_epochs: Any = ours(None, "None: as the classifiers")
    det_batch_size: Any = ours(None, "None: batch_size (the paper's 16 for every model)")
    det_lr: float = paper(1e-3, _SETUP + ": Adam 0.001 for every model")
    det_schedule: str = ours("constant", "detectors' learning rate over the optimiser steps: "
                             "'constant' (the paper's 'decay 0.001' has no stated form) or 'cosine' "
                             "(linear warm-up over det_warmup steps, then half a cosine to 0). Quick "
                             "seed 0, visible-lesion control: constant 0.484, cosine with 30 warm-up "
                             "steps 0.419 (0.419 with box_batch 8 + five anchor ratios, against 0.677 "
                             "constant); not adopted (docs/PERFORMANCE.md, yin2024 quick)")
    det_warmup: int = ours(0, "warm-up steps of the 'cosine' schedule")
    box_score_thresh: float = ours(0.001, "detections kept down to this score (torchvision: 0.05) so "
                                   "the validation grid below can reach weak detections")
    score_thresholds: tuple = ours((0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
                                   "image class = best detection's class, normal when no detection "
                                   "scores above t; t = the grid value with the best validation "
                                   "accuracy (lowest t on ties)")
    deeplesion_masks: str = ours("ellipse inscribed in the RECIST box", "DeepLesion has no outlines")
    ablation: tuple = paper(("maskrcnn", "maskrcnn_dc", "maskrcnn_am", "maskrcnn_dc_am"), "Table 6")
    # phantoms and how we run
    phantom_studies: int = runtime(60, f"{_PHANTOM}: CQ500-layout head CTs")
    phantom_patients: int = runtime(150, f"{_PHANTOM}: DeepLesion-layout body CTs")
    phantom_size: int = runtime(256, "phantom slice size in pixels")
    difficulty: float = runtime(0.5, "phantom lesion conspicuity (0 easy .. 1 hard)")
    phantom_seed: int = runtime(0, "seed of the phantom generators")
    n_boot: int = runtime(1000, "bootstrap resamples of every CI and paired test")
    threads: int = runtime(1, "torch threads; measured on the shared 2-core CPU (load ~9): 2 threads "
                           "made a training step 10-40x slower than 1")
    train_workers: int = runtime(1, "processes training the networks side by side (each with "
                                 "`threads` torch threads; brainlib.engine.parallel): the "
                                 "numbers are those of one process, only wall time changes. "
                                 "Quick uses 2: notebook 408 -> 367 s on an idle 2-core host "
                                 "(each training ~1.3x slower beside another; the longest "
                                 "chain, TCCBAM-DResNet-10 then its Mask R-CNN, sets the wall "
                                 "time; docs/PERFORMANCE.md)")
    examples: int = runtime(4, "test images in the example-detection figure")

    PROFILES: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "quick": {
            "dataset": "cq500", "phantom_studies": 96, "phantom_patients": 60, "phantom_size": 128,
            "difficulty": 0.0, "preprocessed_size": 112, "image_size": 96, "widths": (8, 16, 32, 64),
            "depths": (10,), "epochs": 8, "images_per_class": 80, "images_per_scan": 4, "fpn_channels": 16,
            "head_dim": 64, "mask_dim": 16, "det_epochs": 12, "det_batch_size": 4, "rpn_proposals": (150, 75, 75, 40),
            "box_batch": 32, "box_positive_fraction": 0.5, "ablation": ("maskrcnn", "maskrcnn_dc_am"),
            "detections_per_img": 8, "anchor_sizes": ((4, 8), (8, 16), (16, 32), (32, 64), (64, 128)),
            "rpn_fg_iou": 0.5, "n_boot": 200, "train_workers": 2,
        },
        "smoke": {
            "dataset": "both", "phantom_studies": 12, "phantom_patients": 16, "phantom_size": 64,
            "difficulty": 0.5, "preprocessed_size": 36, "image_size": 32, "widths": (8, 16, 32, 64),
            "depths": (10,), "epochs": 1, "images_per_class": 10, "fpn_channels": 16, "head_dim": 32,
            "mask_dim": 16, "det_epochs": 1, "ablation": ("maskrcnn", "maskrcnn_dc_am"),
            "rpn_proposals": (60, 30, 30, 20), "box_batch": 32, "detections_per_img": 5,
            "anchor_sizes": (4, 8, 16, 32, 64),
            "n_boot": 50, "examples": 2,
        },
    }
    PROFILE_REASONS: ClassVar[Mapping[str, str]] = {
        **Settings.PROFILE_REASONS,
        "quick": "quick profile: minutes on a shared 2-core CPU (CQ500 layout only, depth 10 only). "
                 "96 px inputs (112 before the crop) from 128-px phantoms at difficulty 0: at 48 px the "
                 "fracture masks covered 1-8 pixels and thin extra-axial bleeds 2-3 pixels (invisible in a "
                 "montage); the networks are half as wide (8-64 channels) to pay for the 4x pixels. 96 "
                 "studies, at most 4 images of a class per scan and 80 per class, so the test split is not "
                 "the neighbouring slices of two fracture scans (it was 10 of 24 images); 80 rather than 50 "
                 "(train 119 -> 163 images, test 37 -> 57): with 50 the positive control swung 0.28-0.58 "
                 "over seeds and float rounding, with 80 it reached 0.61 / 0.53 / 0.63 on seeds 0 / 1 / 2 "
                 "(docs/PERFORMANCE.md, yin2024 quick). Mask R-CNNs: batch 4 "
                 "for 12 epochs (360 updates; batch 16 for 6 epochs gave 48), 32 RoIs per image with half "
                 "positives (lesion RoIs were too rare for the box head to learn classes), two anchor sides per "
                 "FPN level (4-8 px at stride 4 ... 64-128 px) with RPN positives from IoU 0.5 (with one "
                 "side per level equal to the stride, 12 % of the training bleeds and 3 % of the fractures "
                 "had a proposal at IoU 0.5), and Table 6's two "
                 "end rows only (Mask RCNN, +DC+AM: the +DC and +AM rows would double the detector time). "
                 "DeepLesion runs in smoke and full, depths 18-50 and every Table 6 row in full",
    }

    def __post_init__(self) -> None:
        if self.dataset not in (*DATASETS, "both"):
            raise ValueError(f"dataset must be one of {DATASETS} or 'both', got {self.dataset!r}")
        if self.image_size > self.preprocessed_size:
            raise ValueError("image_size must not exceed preprocessed_size (random crop)")
        if self.det_schedule not in ("constant", "cosine"):
            raise ValueError(f"det_schedule must be 'constant' or 'cosine', got {self.det_schedule!r}")
        if self.det_init not in ("classifier", "random"):
            raise ValueError(f"det_init must be 'classifier' or 'random', got {self.det_init!r}")
        if len(self.split) != 3 or abs(sum(self.split) - 1) > 1e-6:
            raise ValueError(f"split must be three fractions summing to 1, got {self.split}")

    @property
    def datasets(self) -> tuple[str, ...]:
        return DATASETS if self.dataset == "both" else (self.dataset,)


CAPTIONS: dict[str, str] = {
    "data": "Images per class and split for each dataset (after the loaders' checks)",
    "table2": "Table 2: ResNet-50/34/18/10 classifiers on the test split: accuracy, macro "
              "precision / recall / F1, Cohen's kappa (%, 95 % bootstrap CIs)",
    "table3": "Table 3: deformable ResNets (DResNet) on the test split",
    "table4": "Table 4: CBAM vs TCCBAM on each DResNet, with paired tests (bootstrap of the F1 "
              "difference, McNemar on correctness)",
    "table5": "Table 5: Mask R-CNN + TCCBAM-DResNet-10 (measured) beside the paper's rows",
    "table6": "Table 6: Mask R-CNN ablation (+DC, +AM, +DC+AM), accuracy and macro F1 with "
              "paired tests against the full model",
    "thresholds": "Detection score threshold chosen on validation for each Mask R-CNN",
    "training": "Training history of every network (per epoch)",
}
