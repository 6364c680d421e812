"""The one configuration object of an accelerator instance.

Every parameter of a generated accelerator lives in :class:`AccelConfig`. The generator builds it
from its command line, the Amaranth components in ``hw/`` take it (or values read from it), the
golden model derives its numerics from it, and the cocotb testbenches in ``sim/`` receive it as
JSON. No parameter is repeated by hand anywhere else.
"""

import dataclasses
import json
import re

from . import numerics

__all__ = ["ConfigError", "AccelConfig", "parse_pe", "dense_lanes_fit"]


class ConfigError(ValueError):
    """A configuration value is out of range or malformed. The message is one line.

    ``field`` names the parameter at fault (None when it is not one field), so that a command
    line can name its own flag instead.
    """

    def __init__(self, message, field=None):
        super().__init__(message)
        self.field = field

    def naming_flag(self, flags=None):
        """The message with the field's name, where it starts the message, replaced by the
        command-line flag that sets it: ``flags[field]`` when a ``flags`` mapping is given
        (fields it lacks are left as they are), else the field's name as a ``--dashed-flag``."""
        message = str(self)
        if not self.field or not message.startswith(self.field):
            return message
        if flags is None:
            flag = "--" + self.field.replace("_", "-")
        else:
            flag = flags.get(self.field, self.field)
        return flag + message[len(self.field):]


# Limits that keep elaboration and simulation within reason. Larger arrays are refused, not
# attempted: Amaranth elaboration time grows with the PE count.
MAX_PE_DIM = 64
MIN_WIDTH, MAX_WIDTH = 2, 16
MAX_TILE_DEPTH = 1 << 16
MAX_TOPK_LANES = 16
#: Most dense rows in one beat of the PE array's dense port.
MAX_DENSE_ROWS = 8
MAX_TENSOR_LEN_LIMIT = 1 << 30
MAX_NM_M = 16
MAX_KERNEL_SLICE = 49

_TOP_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _field(default, help_text):
    """A configuration field with its one-line help (the command line shows it)."""
    return dataclasses.field(default=default, metadata={"help": help_text})


def _power_of_two_floor(n, lo, hi):
    """The largest power of two at most ``n``, kept within ``lo`` .. ``hi``."""
    return max(lo, min(hi, 1 << max(0, n.bit_length() - 1)))


def dense_lanes_fit(lanes, cols):
    """Whether a dense port of ``lanes`` values a beat suits ``cols`` PE columns: a divisor of
    ``cols`` (a row in several beats) or ``cols`` times 2, 4 or 8 (several rows a beat)."""
    if lanes <= cols:
        return cols % lanes == 0
    return lanes % cols == 0 and lanes // cols in (2, 4, 8)


def _check_int(name, value, lo, hi):
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an integer, not {value!r}", name)
    if not lo <= value <= hi:
        raise ConfigError(f"{name} must be between {lo} and {hi}, not {value}", name)


@dataclasses.dataclass(frozen=True)
class AccelConfig:
    """Parameters of one accelerator instance.

    Parameters
    ----------
    pe_rows : int
        Rows of the PE array (1 to 64).
    pe_cols : int
        Columns of the PE array (1 to 64).
    width : int
        Operand width in bits (2 to 16). Operands are signed two's complement integers.
    tile_depth : int
        Longest reduction (dense-operand tile depth) one tile accumulates (1 to 65536). The
        accumulator width is derived from it so that overflow is impossible.
    pe_dense_lanes : int
        Values per beat of the PE array's dense-operand port: a divisor of ``pe_cols`` (a row
        in several beats), or ``pe_cols`` times 2, 4 or 8 (that many rows a beat); 0 derives it
        from the array (:attr:`dense_port_lanes`).
    pe_sparse_lanes : int
        Entries per beat of the PE array's sparse-operand port; 0 means ``pe_rows``.
    pe_result_lanes : int
        Row results per beat of the PE array's result port; 0 means ``ceil(pe_rows / 2)``.
    pe_bank_entries : int
        Sparse entries a job may place in each PE row's bank; the bank holds two jobs (the
        next one loads while this one computes).
    pe_max_rows, pe_max_tiles : int
        Most sparse rows and dense column tiles in one PE-array job.
    pe_lut_products : int
        PEs (the last ones, in row order) whose products are built from LUTs and carry chains
        instead of a DSP multiplier (0 to ``pe_rows * pe_cols``): an array with more PEs than
        the part has multipliers fits (ECP5-85F: 156). The results are the same.
    topk_lanes : int
        Elements per beat of the streaming top-K selector (the host's tensor port and the
        compressed stream into the activation buffer; a power of two, 1 to 16); 0, the
        default, derives them from the array (:attr:`selector_lanes`).
    max_tensor_len : int
        Longest tensor, in elements, the top-K selector counts (1 to 2**30).
    nm_max_m : int
        Largest group size M of the top-K selector's N:M mode (1 to 16).
    max_kernel_slice : int
        Longest kernel slice (kh*kw) of structured top-K (1 to 49).
    act_bitmap_bits, act_values : int
        Capacity of the compressed-activation buffer: bitmap bits (elements) and kept values.
    act_scan_bits : int
        Bits of the activation buffer's bitmap words: a row read scans one word a cycle
        (a power of two, at least :attr:`selector_lanes`, up to 256).
    act_lanes : int
        Values per word of the activation buffer's value memory, and kept elements per beat
        of its reads (a power of two, at most :attr:`selector_lanes`); 0 derives it
        (:attr:`buffer_lanes`). A write takes the selector's wider words through a queue, a
        word of values a cycle.
    act_tensors : int
        Descriptor slots of the activation buffer (tensors held at once, 1 to 64).
    act_max_rows, act_max_cols : int
        Largest activation matrix the buffer stores (1 to 2**16 each).
    act_conv_read : int
        1: the activation buffer keeps a conv layer's input as feature maps with a directory
        and builds the weight gradient's im2col rows on read (``READ_CONV``); 0 leaves that
        logic and the directory memory out (for small parts): conv layers then save their
        im2col matrix.
    top_name : str
        Name of the generated top-level Verilog module.

    Attributes
    ----------
    acc_width : int
        Accumulator width in bits, derived from ``width`` and ``tile_depth``.
    product_width : int
        Width of one exact product of two operands.
    magnitude_width : int
        Width of an operand's magnitude (``|-2**(width-1)|`` needs ``width`` bits).

    Raises
    ------
    ConfigError
        If a parameter is of the wrong type or out of range.
    """

    pe_rows: int = _field(16, "PE array rows")
    pe_cols: int = _field(16, "PE array columns")
    width: int = _field(8, "operand width in bits (signed), 2 to 16")
    tile_depth: int = _field(256, "longest reduction one tile accumulates; sets the "
                                  "accumulator width")
    pe_dense_lanes: int = _field(0, "values per beat of the PE array's dense-operand port: a "
                                 "divisor of pe_cols, or pe_cols times 2, 4 or 8 (rows a "
                                 "beat); 0 means pe_cols times pe_rows/8 rounded down to a "
                                 "power of two, 1 to 4")
    pe_sparse_lanes: int = _field(0, "entries per beat of the PE array's sparse-operand port; "
                                     "0 means pe_rows (the array's consumption rate), at least "
                                     "the selector's lanes")
    pe_result_lanes: int = _field(0, "row results per beat of the PE array's result port; "
                                     "0 means one per 2 PE rows")
    pe_bank_entries: int = _field(4096, "sparse entries a job may place in each PE row's bank "
                                        "(the bank holds two jobs: the next one loads while "
                                        "this one computes)")
    pe_max_rows: int = _field(4096, "most sparse rows in one PE-array job")
    pe_max_tiles: int = _field(1024, "most dense column tiles in one PE-array job")
    pe_lut_products: int = _field(0, "PEs (the last, in row order) whose products use LUTs, "
                                     "not a DSP multiplier, so that more PEs than the part's "
                                     "multipliers fit")
    topk_lanes: int = _field(0, "elements per cycle of the top-K selector (a power of two); "
                                "0 derives them from the array: pe_rows rounded down to a "
                                "power of two, 4 to 16")
    max_tensor_len: int = _field(1 << 24, "longest tensor (elements) the top-K selector takes")
    nm_max_m: int = _field(8, "largest M of the top-K selector's N:M mode")
    max_kernel_slice: int = _field(9, "longest kernel slice (kh*kw) of structured top-K")
    act_bitmap_bits: int = _field(1 << 20, "activation buffer capacity: bitmap bits (elements)")
    act_values: int = _field(1 << 17, "activation buffer capacity: kept values")
    act_scan_bits: int = _field(32, "activation buffer bitmap word: a row read scans one a "
                                    "cycle (power of two, at least the selector's lanes)")
    act_lanes: int = _field(0, "activation buffer: values per word of its value memory and "
                               "kept elements per beat of its reads (a power of two, at most "
                               "the selector's lanes); 0 means the selector's lanes, at most 4")
    act_tensors: int = _field(16, "activation buffer descriptor slots (tensors held at once)")
    act_max_rows: int = _field(4096, "largest activation matrix the buffer stores: rows")
    act_max_cols: int = _field(4096, "largest activation matrix the buffer stores: columns")
    act_conv_read: int = _field(1, "1: the activation buffer keeps feature maps with a "
                                   "directory and builds im2col rows on read (READ_CONV); 0 "
                                   "leaves that logic out, for small parts")
    act_conv_words: int = _field(0, "bitmap words the activation buffer's conv read scans a "
                                    "cycle, 1 or 2 (the second through second read ports); 0 "
                                    "derives it from the array: 2 from 256 PEs on")
    top_name: str = _field("swat_accel", "name of the top-level Verilog module (prefix of "
                                         "every module)")

    def __post_init__(self):
        _check_int("pe_rows", self.pe_rows, 1, MAX_PE_DIM)
        _check_int("pe_cols", self.pe_cols, 1, MAX_PE_DIM)
        _check_int("width", self.width, MIN_WIDTH, MAX_WIDTH)
        _check_int("tile_depth", self.tile_depth, 1, MAX_TILE_DEPTH)
        _check_int("pe_dense_lanes", self.pe_dense_lanes, 0, MAX_DENSE_ROWS * self.pe_cols)
        if self.pe_dense_lanes and not dense_lanes_fit(self.pe_dense_lanes, self.pe_cols):
            raise ConfigError(f"pe_dense_lanes must divide pe_cols ({self.pe_cols}) or be "
                              f"pe_cols times 2, 4 or 8, not {self.pe_dense_lanes}",
                              "pe_dense_lanes")
        _check_int("pe_sparse_lanes", self.pe_sparse_lanes, 0, MAX_PE_DIM)
        _check_int("pe_result_lanes", self.pe_result_lanes, 0, self.pe_rows)
        _check_int("pe_bank_entries", self.pe_bank_entries, 1, 1 << 20)
        _check_int("pe_max_rows", self.pe_max_rows, 1, 1 << 16)
        _check_int("pe_max_tiles", self.pe_max_tiles, 1, 1 << 16)
        _check_int("pe_lut_products", self.pe_lut_products, 0, self.pe_rows * self.pe_cols)
        _check_int("topk_lanes", self.topk_lanes, 0, MAX_TOPK_LANES)
        if self.topk_lanes & (self.topk_lanes - 1):
            # The activation buffer addresses lanes within a word by bit slicing.
            raise ConfigError(f"topk_lanes must be a power of two, not {self.topk_lanes}",
                              "topk_lanes")
        _check_int("max_tensor_len", self.max_tensor_len, 1, MAX_TENSOR_LEN_LIMIT)
        _check_int("nm_max_m", self.nm_max_m, 1, MAX_NM_M)
        _check_int("max_kernel_slice", self.max_kernel_slice, 1, MAX_KERNEL_SLICE)
        _check_int("act_bitmap_bits", self.act_bitmap_bits, 1, 1 << 28)
        _check_int("act_values", self.act_values, 1, 1 << 26)
        _check_int("act_scan_bits", self.act_scan_bits, 1, 256)
        if (self.act_scan_bits & (self.act_scan_bits - 1)
                or self.act_scan_bits < self.selector_lanes):
            raise ConfigError(f"act_scan_bits must be a power of two no smaller than the "
                              f"selector's lanes ({self.selector_lanes}), not "
                              f"{self.act_scan_bits}", "act_scan_bits")
        _check_int("act_lanes", self.act_lanes, 0, MAX_TOPK_LANES)
        if self.act_lanes & (self.act_lanes - 1) or self.act_lanes > self.selector_lanes:
            # A write splits the selector's words of values into the buffer's.
            raise ConfigError(f"act_lanes must be a power of two no larger than the selector's "
                              f"lanes ({self.selector_lanes}), not {self.act_lanes}",
                              "act_lanes")
        _check_int("act_tensors", self.act_tensors, 1, 64)
        _check_int("act_max_rows", self.act_max_rows, 1, 1 << 16)
        _check_int("act_max_cols", self.act_max_cols, 1, 1 << 16)
        _check_int("act_conv_read", self.act_conv_read, 0, 1)
        _check_int("act_conv_words", self.act_conv_words, 0, 2)
        if self.act_conv_words == 2 and self.act_scan_bits < 2:
            raise ConfigError("act_conv_words 2 needs act_scan_bits of at least 2, not "
                              f"{self.act_scan_bits}", "act_conv_words")
        if not isinstance(self.top_name, str) or not _TOP_NAME_RE.match(self.top_name):
            raise ConfigError(f"top_name must be a Verilog identifier, not {self.top_name!r}",
                              "top_name")

    @property
    def acc_width(self):
        return numerics.acc_width(self.width, self.tile_depth)

    @property
    def product_width(self):
        return numerics.product_width(self.width)

    @property
    def magnitude_width(self):
        return numerics.magnitude_width(self.width)

    @property
    def dense_port_lanes(self):
        """Values per beat of the PE array's dense port: ``pe_dense_lanes``, or ``pe_cols``
        times ``pe_rows / 8`` rounded down to a power of two, 1 to 4. A dense tile of depth
        ``K`` serves ``d * cout`` sparse entries per row of it, and the ``R`` PE rows take
        ``R`` a cycle: with fewer than ``R / (d * cout)`` dense rows a cycle (2.5 for a
        64-output layer at density 0.1 on 16 rows) the load, not the array, sets the pace."""
        if self.pe_dense_lanes:
            return self.pe_dense_lanes
        return self.pe_cols * _power_of_two_floor(self.pe_rows // 8, 1, 4)

    @property
    def dense_rows_per_beat(self):
        """Dense rows in one beat of the dense port (1 when a row takes one or more beats)."""
        return max(1, self.dense_port_lanes // self.pe_cols)

    def dense_tile_beats(self, depth):
        """Beats of one dense tile of ``depth`` rows."""
        if self.dense_port_lanes >= self.pe_cols:
            return -(-depth // self.dense_rows_per_beat)
        return depth * (self.pe_cols // self.dense_port_lanes)

    @property
    def selector_lanes(self):
        """Elements per cycle of the top-K selector and the activation buffer (``topk_lanes``,
        or derived from the array: ``pe_rows`` rounded down to a power of two, at least 4 and at
        most 16). The forward and input-gradient jobs stream their weight rows through the
        selector, and a layer's save streams its activations: with fewer lanes than PE rows
        the selector, not the array, sets their pace."""
        if self.topk_lanes:
            return self.topk_lanes
        return _power_of_two_floor(self.pe_rows, 4, MAX_TOPK_LANES)

    @property
    def buffer_lanes(self):
        """Values per word of the activation buffer's value memory and kept elements per beat
        of its reads (``act_lanes``, or the selector's lanes up to 4). At a SWAT density a
        selector beat carries a few kept values, so a narrower value memory keeps up with the
        selector's writes; the reads' lane pick grows with the square of its lanes."""
        return self.act_lanes or min(4, self.selector_lanes)

    @property
    def conv_read_words(self):
        """Bitmap words the conv read scans a cycle (``act_conv_words``, or derived: 2 from
        256 PEs on). A weight gradient's PE rows take ``R * C / cout`` kept elements a cycle
        (4 for a 64-output layer on 16 x 16), where a word a cycle gives about 2.5 at
        density 0.1; 1 without the conv read."""
        if not self.act_conv_read:
            return 1
        if self.act_conv_words:
            return self.act_conv_words
        return 2 if self.pe_rows * self.pe_cols >= 256 and self.act_scan_bits >= 2 else 1

    @property
    def sparse_port_lanes(self):
        """Entries per beat of the PE array's sparse port (``pe_sparse_lanes``, or
        ``pe_rows``)."""
        return self.pe_sparse_lanes or max(self.pe_rows, self.selector_lanes)

    @property
    def result_port_lanes(self):
        """Row results per beat of the PE array's result port (``pe_result_lanes``, or one
        per 2 PE rows: a lane shared by more PE rows queues results of short rows)."""
        return self.pe_result_lanes or -(-self.pe_rows // 2)

    @property
    def pe(self):
        """The array size as the command line writes it, ``"RxC"``."""
        return f"{self.pe_rows}x{self.pe_cols}"

    @classmethod
    def field_help(cls):
        """``{name: (default, help)}`` of every parameter, in declaration order."""
        return {f.name: (f.default, f.metadata["help"]) for f in dataclasses.fields(cls)}

    def replace(self, **changes):
        """Return a copy with ``changes`` applied (and validated)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        return dataclasses.asdict(self)

    def derived(self):
        """Widths that follow from the parameters, for manifests and reports."""
        return {
            "acc_width": self.acc_width,
            "product_width": self.product_width,
            "magnitude_width": self.magnitude_width,
            "selector_lanes": self.selector_lanes,
            "buffer_lanes": self.buffer_lanes,
            "conv_read_words": self.conv_read_words,
            "pe_sparse_port_lanes": self.sparse_port_lanes,
            "pe_dense_port_lanes": self.dense_port_lanes,
            "pe_dense_rows_per_beat": self.dense_rows_per_beat,
            "pe_result_port_lanes": self.result_port_lanes,
        }

    def to_json(self):
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data):
        names = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"unknown configuration keys: {', '.join(unknown)}")
        return cls(**data)

    @classmethod
    def from_json(cls, text):
        return cls.from_dict(json.loads(text))


def parse_pe(text, flag="--pe"):
    """Parse an array size ``"RxC"`` into ``(rows, cols)``; errors name ``flag``.

    Raises
    ------
    ConfigError
        If ``text`` is not two positive integers joined by ``x`` within the size limit.
    """
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", str(text))
    if not match:
        raise ConfigError(f"{flag} must be ROWSxCOLS with positive integers, like 16x16, "
                          f"not {text!r}")
    rows, cols = int(match.group(1)), int(match.group(2))
    for name, value in (("rows", rows), ("columns", cols)):
        if not 1 <= value <= MAX_PE_DIM:
            raise ConfigError(f"{flag} {name} must be between 1 and {MAX_PE_DIM}, not {value}")
    return rows, cols
