"""Settings of Wang et al., DrCT1/DrCT2 (CQ500 and RSNA): one frozen dataclass.

Class defaults are the `full` profile, the paper's own values where it gives them (section
VI.A.1 for data and training, V for the networks); `quick` and `smoke` shrink sizes for a
shared 2-core CPU. Fields that differ per dataset end in ``_cq500`` / ``_rsna``; the notebook's
`folds` and `max_studies` set both (`settings_for`). Deviations and readings are derived from
the fields (`brainlib.experiment.Settings`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

from brainlib.experiment import Settings, ours, paper, runtime

DATASETS: tuple[str, ...] = ("cq500", "rsna")
LAYOUT_LABEL: dict[str, str] = {"cq500": "CQ500", "rsna": "RSNA"}
ENCODERS: tuple[str, ...] = ("auto", "phantom_pretrained", "random", "imagenet")
#: Notebook parameters that set one field per dataset.
BOTH_DATASETS: tuple[str, ...] = ("folds", "max_studies")

_TRAIN = "Sec. VI.A.1"
_PHANTOM = "size of the embedded phantom set (no real data offline)"


@dataclass(frozen=True)
class WangDrct2Settings(Settings):
    """Every setting of the DrCT1/DrCT2 experiments, with the paper's value or our reason."""

    # data
    max_studies_cq500: Any = runtime(None, "all scans (None); a cap for short runs")
    max_studies_rsna: Any = runtime(None, "all scans (None); a cap for short runs")
    phantom_studies_cq500: int = runtime(491, f"{_PHANTOM}; CQ500 has 491 scans")
    phantom_studies_rsna: int = runtime(1000, _PHANTOM)
    phantom_size: int = runtime(512, "phantom slice size in pixels (CT's native 512)")
    difficulty: float = runtime(0.5, "phantom lesion conspicuity (realistic)")
    phantom_seed: int = runtime(0, "seed of the phantom generator and of study selection")
    phantom_label_size: Any = runtime(None, "slice-label rule at this working size (truth "
                                            "sidecar: slices whose lesion covers < 8 px at it "
                                            "are uncertain, NaN in key-slice tasks and encoder "
                                            "pretraining); None: the CSV's native-size labels")
    cq500_min_thickness: float = paper(0.0, f"{_TRAIN}: every scan is sampled, thin 0.625 mm "
                                            "ones included")
    seq_len_cq500: int = paper(32, f"{_TRAIN}: fixed-length sampling, 32 slices for CQ500")
    seq_len_rsna: int = paper(28, f"{_TRAIN}: 28 slices for RSNA")
    extra_sequences: bool = paper(True, f"{_TRAIN}: the unsampled slices form new CT sets")
    # evaluation and training
    folds_cq500: int = paper(10, f"{_TRAIN}: 10-fold cross-validation on CQ500")
    folds_rsna: int = paper(5, f"{_TRAIN}: 5-fold cross-validation on RSNA")
    batch_cq500: int = paper(32, f"{_TRAIN}: batch size 32 for CQ500")
    batch_rsna: int = paper(256, f"{_TRAIN}: batch size 256 for RSNA")
    epochs: int = paper(100, f"{_TRAIN}: 100 epochs, Adam")
    lr_primary: float = paper(5e-4, f"{_TRAIN}: 0.0005 for the primary network")
    lr_aps: float = paper(3e-4, f"{_TRAIN}: 0.0003 for the APS network")
    lr_fusion: float = paper(5e-4, f"{_TRAIN}: 0.0005 for the fusion network")
    lr_slice_max: float = ours(5e-3, "the max-over-slices sanity baseline (not in the paper): "
                                     "an MLP on frozen features; 5e-4 left it near chance "
                                     "after quick's 20 epochs (toy and phantom runs)")
    # networks
    image_size: int = paper(224, "Sec. V.B: slices of 224 x 224")
    zoom_size: int = paper(512, "Sec. V.B, eq. 8: key slices zoomed to 512 x 512")
    m_key: int = paper(16, "Sec. VI.A.3: m_key = 16 as the default setting")
    fig6_m_keys: tuple = paper((4, 8, 12, 16, 20, 24, 28), "Fig. 6: m_key from 4 to 28")
    width: float = paper(1.0, "Sec. V.A: VGG-16, 512 feature maps per slice")
    dropout: float = paper(0.5, "Sec. V.A.3: dropout rate 0.5")
    hidden: int = ours(256, "BiGRU width; the paper gives none")
    fc: tuple = ours((256, 128), "widths of the three FC layers' hidden units; not given. "
                                 "Quick keeps them: its former (64, 32) under the paper's "
                                 "dropout 0.5 gave DrCT2 0.015-0.03 lower macro AUC on seeds "
                                 "0-2 (docs/PERFORMANCE.md)")
    feature_standardize: bool = paper(False, "Sec. V.A.1, eq. 3: the softmax reads the "
                                             "encoder output z itself")
    feature_rescale: bool = ours(True, "eq. 3's merge x = z * w scaled by D (a constant: a "
                                       "uniform attention leaves z unchanged instead of "
                                       "shrinking every BiGRU input D-fold)")
    output_activation: str = ours("tanh", "g of eq. 4 (output layer W_y, b_y of every BiGRU "
                                          "step) is not named; width kept at 2 x hidden")
    slice_pooling: str = ours("sum", "eqs. 5-6: how the attention-weighted matrix reaches "
                                     "the FC layers is not said; sum over slices")
    aps_pooling: str = ours("mean", "Sec. V.B: how the APS BiGRU outputs reach its FC layers "
                                    "is not said; mean over the key slices")
    # slice encoder ("auto": ImageNet file if given, else random; pretraining on phantoms
    # of another seed on request)
    encoder: str = ours("auto", "ImageNet VGG-16 from a local file if given, else frozen random "
                                "weights (no ImageNet weights offline); quick pretrains a "
                                "shallow encoder on disjoint phantoms (encoder.py)")
    encoder_arch: str = paper("vgg16", "Sec. V.A: VGG-16 conv layers, adaptive max-pool")
    pretrain_studies: int = ours(200, "phantom studies for the optional encoder pretraining")
    pretrain_epochs: int = ours(10, "epochs of the optional encoder pretraining")
    pretrain_batch: int = ours(32, "batch of the optional encoder pretraining")
    pretrain_lr: float = ours(1e-3, "learning rate of the optional encoder pretraining")
    pretrain_label_min_pixels: int = ours(8, "slice-label rule of the pretraining phantoms: "
                                             "a lesion counts when it covers >= this many "
                                             "pixels at phantom_label_size (smaller: NaN, "
                                             "left out); 16 (he2024 quick's rule) was "
                                             "measured for quick and not adopted "
                                             "(docs/PERFORMANCE.md)")
    pretrain_optimizer: str = ours("adam", "optimiser of the optional encoder pretraining "
                                           "(engine.fit: adam, adamw or sgd)")
    pretrain_weight_decay: float = ours(0.0, "weight decay of the optional encoder pretraining")
    pretrain_lr_step: Any = ours(None, "encoder pretraining lr x 0.1 every this many epochs "
                                       "(StepLR); None: constant (15 measured for quick on "
                                       "288 studies: no gain, docs/PERFORMANCE.md)")
    pretrain_augment: bool = ours(False, "random left-right flips and shifts (1/16 of the "
                                         "size) of the pretraining slices")
    # how we run
    ablations: bool = runtime(True, "train the ablations of Tables 2, 4, 7 and Fig. 6")
    report_scans: int = runtime(5, "scans with a Fig. 2 report")
    n_boot: int = runtime(1000, "bootstrap resamples of every CI")
    train_threads: int = runtime(1, "torch threads while training (tiny GRU heads: one "
                                    "thread avoids contention on a shared CPU)")
    encode_threads: int = runtime(2, "torch threads while encoding slices and pretraining "
                                     "the encoder (conv layers use both cores)")

    PROFILES: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "quick": {
            "phantom_studies_cq500": 48, "phantom_studies_rsna": 48,
            "phantom_size": 128, "cq500_min_thickness": 2.5,
            "difficulty": 0.0, "phantom_label_size": 64,
            "encoder": "phantom_pretrained", "encoder_arch": "small_bn",
            "seq_len_cq500": 16, "seq_len_rsna": 14,
            "folds_cq500": 3, "folds_rsna": 3,
            "batch_cq500": 8, "batch_rsna": 8,
            "epochs": 20,
            "image_size": 64, "zoom_size": 146,
            "m_key": 8, "fig6_m_keys": (4, 8),
            "width": 0.125, "hidden": 64,
            "report_scans": 2, "n_boot": 100,
            "pretrain_studies": 144, "pretrain_epochs": 20, "pretrain_augment": True,
        },
        "smoke": {
            "phantom_studies_cq500": 12, "phantom_studies_rsna": 12,
            "phantom_size": 64, "cq500_min_thickness": 2.5,
            "seq_len_cq500": 8, "seq_len_rsna": 7,
            "folds_cq500": 2, "folds_rsna": 2,
            "batch_cq500": 8, "batch_rsna": 8,
            "epochs": 2,
            "image_size": 32, "zoom_size": 73,
            "m_key": 4, "fig6_m_keys": (4, 8),
            "width": 0.125, "hidden": 16, "fc": (16, 16),
            "report_scans": 1, "n_boot": 50,  # one Fig. 2 report: ~5 s each (smoke <= 60 s)
            "pretrain_studies": 12, "pretrain_epochs": 1,
        },
    }

    def __post_init__(self) -> None:
        if self.zoom_size < self.image_size:
            raise ValueError(f"zoom_size {self.zoom_size} is smaller than image_size "
                             f"{self.image_size}")
        if self.encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {ENCODERS}, got {self.encoder!r}")

    def of(self, key: str, dataset: str) -> Any:
        """The per-dataset field `key` of `dataset` (``s.of("folds", "cq500")``)."""
        return getattr(self, f"{key}_{dataset}")


def settings_for(profile: str = "quick", **overrides: Any) -> WangDrct2Settings:
    """Resolve a profile; `folds` and `max_studies` set both datasets, other keys as named.

    Raises ValueError for an unknown profile or setting, zoom smaller than the working size,
    or an unknown encoder.
    """
    over = {k: v for k, v in overrides.items() if v is not None}
    for key in BOTH_DATASETS:
        if key in over:
            value = over.pop(key)
            for name in DATASETS:
                over.setdefault(f"{key}_{name}", value)
    return WangDrct2Settings.for_profile(profile, **over)


def datasets_for(dataset: str) -> tuple[str, ...]:
    """``"both"`` -> ("cq500", "rsna"); a single name -> (name,)."""
    if dataset == "both":
        return DATASETS
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be 'cq500', 'rsna' or 'both', got {dataset!r}")
    return (dataset,)
