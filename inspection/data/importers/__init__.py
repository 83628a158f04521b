"""Importers: turn a source layout (NEU, MVTec AD, class folders) into a self-contained manifest dataset."""

from inspection.data.importers.folder import import_folder
from inspection.data.importers.mvtec import import_mvtec
from inspection.data.importers.neu import import_neu

__all__ = ["import_folder", "import_mvtec", "import_neu"]
