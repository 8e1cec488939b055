"""Rows and cached stages as JSON files that appear complete or not at all.

A row's file ``<work>/rows/<name>.json`` is written when the row is finished
(temporary file + ``os.replace``), so it is the row's done-marker: a killed
run leaves no file, or a complete one, and the next run with the same options
continues with the first row that has none.
"""
import glob
import json
import os
import os.path as osp
from typing import Any, Callable, Dict, Iterable, List, Optional, Set


def atomic_write_json(path: str, obj: Any, indent: Optional[int] = None,
                      **dump_kwargs) -> None:
    """Write ``obj`` as JSON to ``path`` through a temporary file in the
    same folder and ``os.replace`` (readers see the old file or the new one,
    never a part). The folder is created.

    Args:
        path (str): The target file.
        obj: What ``json.dump`` writes.
        indent (int, optional): ``json.dump``'s indent. Defaults to None.
        **dump_kwargs: More ``json.dump`` keywords (e.g. ``default=str``).
    """
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    tmp = f'{path}.tmp{os.getpid()}'
    try:
        with open(tmp, 'w') as f:
            json.dump(obj, f, indent=indent, **dump_kwargs)
        os.replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


def read_json(path: str) -> Any:
    """The JSON in ``path``."""
    with open(path) as f:
        return json.load(f)


def cached_json(path: str, compute: Callable[[], Any]) -> Any:
    """The JSON in ``path``; when it does not exist, ``compute()`` first and
    write its result there atomically (a cached stage: its file is its
    done-marker)."""
    if not osp.exists(path):
        atomic_write_json(path, compute())
    with open(path) as f:
        return json.load(f)


class RowStore:
    """The finished rows of a work dir, one JSON file per row.

    Args:
        work_dir (str): The run's work dir; rows go to ``<work_dir>/rows``.
        folder (str): Sub-folder of the row files. Defaults to 'rows'.
    """

    def __init__(self, work_dir: str, folder: str = 'rows') -> None:
        self.work_dir = work_dir
        self.dir = osp.join(work_dir, folder)

    def path(self, name: str) -> str:
        """The file of row ``name``."""
        if not name or osp.sep in name or name.startswith('.'):
            raise ValueError(f'RowStore: a row name must be a plain file name, '
                             f'got {name!r}')
        return osp.join(self.dir, name + '.json')

    def done(self, name: str) -> bool:
        """Whether row ``name`` is finished (its file exists)."""
        return osp.exists(self.path(name))

    def finished(self, names: Iterable[str]) -> Set[str]:
        """The finished ones of ``names``."""
        return {n for n in names if self.done(n)}

    def write(self, name: str, result: Dict) -> None:
        """Write the result of row ``name`` (atomically: the done-marker)."""
        atomic_write_json(self.path(name), result)

    def read(self, name: str) -> Dict:
        """The result of the finished row ``name``."""
        with open(self.path(name)) as f:
            return json.load(f)

    def files(self) -> List[str]:
        """Paths of every finished row file, sorted by name."""
        return sorted(glob.glob(osp.join(self.dir, '*.json')))

    def all(self) -> List[Dict]:
        """Every finished row of the work dir, sorted by file name."""
        out = []
        for path in self.files():
            with open(path) as f:
                out.append(json.load(f))
        return out

    def by_name(self) -> Dict[str, Dict]:
        """Every finished row of the work dir by name (sorted)."""
        return {osp.basename(path)[:-len('.json')]: self.read(
            osp.basename(path)[:-len('.json')]) for path in self.files()}
