"""brainlib.io: DICOM -> Hounsfield units, series assembly, CT windows.

Contracts in docs/DEVELOPING.md ("brainlib.io"). Every reading failure raises a subclass
of `DicomError` whose message starts with the file's path; folder readers return those
failures as `Skipped` entries instead of dropping files.
"""
from brainlib.io.dicom import (
    StoredSlice,
    needs_rsna12_fix,
    read_header,
    read_hu,
    read_stored,
    read_window_tags,
)
from brainlib.io.errors import (
    DicomError,
    ImplausibleImageError,
    MalformedIdError,
    MissingPixelDataError,
    NotCTError,
    Skipped,
    UnreadableDicomError,
    UnsupportedPhotometricError,
    UnsupportedTransferSyntaxError,
    write_skipped,
)
from brainlib.io.series import INDEX_COLUMNS, Series, assemble_series, index_file, scan_folder
from brainlib.io.window import (
    BONE,
    BRAIN,
    SOFT_TISSUE,
    SUBDURAL,
    WINDOWS,
    Window,
    as_window,
    sigmoid_window,
    sigmoid_window_params,
    stack_windows,
    window,
    window_from_sigmoid_params,
)

__all__ = [
    "BONE", "BRAIN", "SOFT_TISSUE", "SUBDURAL", "WINDOWS", "Window", "as_window", "window",
    "stack_windows", "sigmoid_window", "sigmoid_window_params", "window_from_sigmoid_params",
    "DicomError", "UnreadableDicomError", "MissingPixelDataError", "ImplausibleImageError",
    "MalformedIdError",
    "UnsupportedTransferSyntaxError", "UnsupportedPhotometricError", "NotCTError",
    "Skipped", "write_skipped", "StoredSlice", "read_hu", "read_stored", "read_header",
    "read_window_tags", "needs_rsna12_fix", "INDEX_COLUMNS", "Series", "scan_folder",
    "index_file", "assemble_series",
]
