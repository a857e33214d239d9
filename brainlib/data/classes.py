"""Label lists, written once. Every loader, model config and table takes its classes from here."""
from __future__ import annotations

# RSNA 2019 ICH: the CSV's subtype names; `any` first as He et al. report it.
RSNA_SUBTYPES: tuple[str, ...] = (
    "epidural", "intraparenchymal", "intraventricular", "subarachnoid", "subdural",
)
RSNA_CLASSES: tuple[str, ...] = ("any",) + RSNA_SUBTYPES
# Short names used by the papers' tables (EDH, IPH, IVH, SAH, SDH).
RSNA_SHORT: dict[str, str] = {
    "any": "Any", "epidural": "EDH", "intraparenchymal": "IPH",
    "intraventricular": "IVH", "subarachnoid": "SAH", "subdural": "SDH",
}

# CQ500 reads.csv: the 14 per-reader fields, verbatim, in file order.
CQ500_READ_FIELDS: tuple[str, ...] = (
    "ICH", "IPH", "IVH", "SDH", "EDH", "SAH", "BleedLocation-Left", "BleedLocation-Right",
    "ChronicBleed", "Fracture", "CalvarialFracture", "OtherFracture", "MassEffect", "MidlineShift",
)
CQ500_READERS: tuple[str, ...] = ("R1", "R2", "R3")
CQ500_HEADER: tuple[str, ...] = ("name", "Category") + tuple(
    f"{r}:{f}" for r in CQ500_READERS for f in CQ500_READ_FIELDS
)
# The 9 labels Wang et al. (DrCT2) predict on CQ500.
CQ500_CLASSES: tuple[str, ...] = (
    "ICH", "IPH", "IVH", "SDH", "EDH", "SAH", "CalvarialFracture", "MassEffect", "MidlineShift",
)

# Long names as Wang et al. (DrCT2) print them (Table 1), and the CQ500 labels that are the
# RSNA ones under another name (the hemorrhage types; `ICH` is RSNA's `any`).
RSNA_LONG: dict[str, str] = {
    "any": "Any (ICH)", "epidural": "Epidural (EDH)", "intraparenchymal": "Intraparenchymal (IPH)",
    "intraventricular": "Intraventricular (IVH)", "subarachnoid": "Subarachnoid (SAH)",
    "subdural": "Subdural (SDH)",
}
CQ500_TO_RSNA: dict[str, str] = {
    "ICH": "any", "IPH": "intraparenchymal", "IVH": "intraventricular", "SDH": "subdural",
    "EDH": "epidural", "SAH": "subarachnoid",
}
CQ500_LONG: dict[str, str] = {
    **{c: RSNA_LONG[r] for c, r in CQ500_TO_RSNA.items()},
    "CalvarialFracture": "Calvarial fracture", "MassEffect": "Mass effect",
    "MidlineShift": "Midline shift",
}

# Whole-body bone scintigraphy (Lin et al. 2021, Dscint): the four classes of concern, as folder
# names of the folder-per-class layout.
BONESCAN_CLASSES: tuple[str, ...] = ("normal", "metastasis", "arthritis", "thyroid_carcinoma")

# BUSI (Al-Dhabyani et al. 2020): the three class folders of Dataset_BUSI_with_GT, in the
# order Pandiyaraju et al. (2024) name them.
BUSI_CLASSES: tuple[str, ...] = ("benign", "malignant", "normal")

# DeepLesion (Yan et al. 2018) DL_info.csv Coarse_lesion_type 1-8, in code order (-1 = unlabelled).
DEEPLESION_TYPES: tuple[str, ...] = ("bone", "abdomen", "mediastinum", "liver", "lung", "kidney",
                                     "soft_tissue", "pelvis")

# Yin et al. (2024) classify images into four classes (Fig. 9 names Normal, NSIP, OP, UIP: lung
# diseases neither dataset has). Our readings per dataset: CQ500 slices by the lesion they show
# (phantom masks / box annotations), grouped by site; DeepLesion key slices by coarse type.
YIN2024_CQ500_CLASSES: tuple[str, ...] = ("normal", "intra_axial_bleed", "extra_axial_bleed", "fracture")
#: mask / annotation class -> YIN2024_CQ500_CLASSES entry (IPH, IVH inside the brain; EDH,
#: SDH, SAH outside it; calvarial fracture).
YIN2024_CQ500_MAP: dict[str, str] = {
    "intraparenchymal": "intra_axial_bleed", "intraventricular": "intra_axial_bleed",
    "epidural": "extra_axial_bleed", "subdural": "extra_axial_bleed",
    "subarachnoid": "extra_axial_bleed", "calvarial_fracture": "fracture"}
YIN2024_DEEPLESION_CLASSES: tuple[str, ...] = ("normal", "lung", "liver", "kidney")
