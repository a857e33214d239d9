"""Settings of Pandiyaraju et al. (2024, arXiv 2407.02844): one frozen dataclass.

Only the abstract is available, so almost everything is a reading (`ours`): the abstract
fixes the networks (LinkNet with an InceptionResNet backbone and spatial-channel attention;
DCNNIMAF), the task (segment, then classify the segmented tumour as benign / malignant /
normal) and the numbers it reports. Class defaults are the `full` profile; `quick` and
`smoke` shrink sizes for a shared 2-core CPU.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

from brainlib.experiment import Settings, ours, paper, runtime

PAPER = "pandiyaraju2024"
CLASSIFIER_INPUTS: tuple[str, ...] = ("masked_crop", "masked_image")
_ABSTRACT = "abstract"
_PHANTOM = "embedded phantoms (no real data offline)"


@dataclass(frozen=True)
class Pandiyaraju2024Settings(Settings):
    """Every setting of the segmentation and classification experiments."""

    # data
    max_images: Any = runtime(None, "all images (None); a deterministic cap for short runs")
    phantom_images: int = runtime(780, f"{_PHANTOM}; BUSI has 780 images")
    phantom_size: int = runtime(256, "nominal phantom image height in pixels (+-15 %)")
    difficulty: float = runtime(0.5, "phantom lesion conspicuity and speckle (0 easy .. 1 hard)")
    phantom_seed: int = runtime(0, "seed of the phantom generator")
    split: tuple = ours((0.7, 0.1, 0.2), "train / validation / test fractions, stratified by "
                                         "class; the abstract gives no split")
    image_size: int = ours(256, "segmentation input (square, aspect not kept); not in the abstract")
    # segmentation
    encoder: str = paper("inceptionresnetv2", f"{_ABSTRACT}: LinkNet with an InceptionResNet "
                                              "backbone (Inception-ResNet-v2 read)")
    encoder_width: float = ours(1.0, "encoder width multiplier (1 = published widths); used by "
                                     "the _lite encoder only")
    encoder_repeats: tuple = ours((10, 20, 9), "Block35/17/8 repeats of Inception-ResNet-v2; "
                                               "_lite encoder only")
    attention: str = ours("scse after each decoder block", "the abstract names a spatial channel "
                          "attention, not where it sits")
    seg_loss: str = ours("dice + bce", "the abstract quotes a loss without naming it")
    seg_epochs: int = ours(50, "not in the abstract")
    seg_lr: float = ours(1e-3, "Adam; not in the abstract")
    mask_threshold: float = ours(0.5, "lesion probability threshold of the predicted mask")
    empty_dice: float = ours(1.0, "per-image Dice/IoU when truth and prediction are both empty "
                                  "(normal images); a non-empty prediction scores 0")
    min_lesion_fraction: float = ours(0.005, "the classifier sees the predicted mask's largest "
                                      "connected component, none if it covers < 0.5 % of the "
                                      "image (segmentation metrics use the raw thresholded mask)")
    # classification
    classifier_input: str = ours("masked_crop", "the image times the (dilated) mask, cropped to a "
                                 "square around the mask; empty mask -> blank input")
    crop_size: int = ours(128, "classifier input side")
    crop_margin: float = ours(0.5, "square crop side = (1 + margin) x the mask's larger side")
    cls_widths: tuple = ours((32, 64, 128, 256), "DCNNIMAF stage widths; not in the abstract")
    cls_dim: int = ours(128, "DCNNIMAF multiscale fusion width")
    cls_epochs: int = ours(50, "not in the abstract")
    cls_lr: float = ours(1e-3, "Adam; not in the abstract")
    batch_size: int = ours(8, "not in the abstract")
    # leakage audit
    leak_threshold: int = ours(8, "perceptual-hash Hamming distance (of 64 bits) for a candidate pair")
    leak_min_correlation: float = ours(0.9, "64 x 64 correlation confirming a candidate pair")
    # how we run
    n_boot: int = runtime(1000, "bootstrap resamples of every CI")
    threads: int = runtime(1, "torch threads; measured on the shared 2-core CPU: 2 threads "
                                  "trained the segmenter 10-20x slower than 1 (threads wait "
                                  "for each other when other jobs hold the cores)")
    examples: int = runtime(4, "cases in the example-segmentation figure")

    PROFILES: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "quick": {
            "phantom_images": 160, "phantom_size": 128, "difficulty": 0.3,
            "image_size": 96, "encoder": "inceptionresnetv2_lite",
            "encoder_width": 0.25, "encoder_repeats": (1, 2, 1),
            "seg_epochs": 8, "cls_epochs": 8, "crop_size": 48,
            "cls_widths": (12, 24, 48, 64), "cls_dim": 48, "batch_size": 8,
            "n_boot": 200,
        },
        "smoke": {
            "phantom_images": 40, "phantom_size": 80, "difficulty": 0.3,
            "image_size": 64, "encoder": "inceptionresnetv2_lite",
            "encoder_width": 0.125, "encoder_repeats": (1, 1, 1),
            "seg_epochs": 1, "cls_epochs": 1, "crop_size": 32,
            "cls_widths": (8, 16, 32, 32), "cls_dim": 16, "batch_size": 8,
            "n_boot": 50, "examples": 2,
        },
    }
    PROFILE_REASONS: ClassVar[Mapping[str, str]] = {
        **Settings.PROFILE_REASONS,
        "quick": "quick profile: minutes on a 2-core CPU (width/depth-reduced encoder, small "
                 "images, few epochs, plainly visible phantom lesions)",
    }

    def __post_init__(self) -> None:
        if self.image_size % 32:
            raise ValueError(f"image_size must be a multiple of 32 (LinkNet), got {self.image_size}")
        if self.classifier_input not in CLASSIFIER_INPUTS:
            raise ValueError(f"classifier_input must be one of {CLASSIFIER_INPUTS}")
        if len(self.split) != 3 or abs(sum(self.split) - 1) > 1e-6:
            raise ValueError(f"split must be three fractions summing to 1, got {self.split}")


CAPTIONS: dict[str, str] = {
    "data": "Images per class and split (after the loader's checks)",
    "table_segmentation": "Segmentation on the test split: pixel accuracy, loss (Dice + BCE), IoU "
                          "and Dice, per image (mean) and dataset-level (pooled pixels), 95 % "
                          "bootstrap CIs, beside the abstract's numbers",
    "table_classification": "DCNNIMAF on the test split for three inputs (predicted mask, ground-"
                            "truth mask, whole image) and the empty-mask rule; macro F1, "
                            "precision, recall; 95 % bootstrap CIs",
    "table_leakage": "Near-duplicate pairs found by the perceptual-hash audit (all splits)",
    "table_leakage_summary": "Leakage audit: pairs across splits and classes",
    "table_leakage_metrics": "Test metrics with and without the test cases that have a near "
                             "duplicate in another split",
    "training": "Training history of every network (per epoch)",
}
