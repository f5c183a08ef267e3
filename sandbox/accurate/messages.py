"""Error and success messages of the sandbox, in Indonesian (default) and English.

Public facts (reference doc): business errors come back as HTTP 200 with ``s: false`` and ``d`` a
list of messages, Indonesian by default; ``X-Language-Profile: US`` asks for English; a duplicate
transaction number reads exactly ``Sudah ada data lain dengan No Form # <number>``; a save answers
``... berhasil disimpan``.

Assumption: every other text here is the sandbox's own wording. Messages about one field start
with the field path (``detailItem[0].itemNo: ...``) so operators see where the problem is.
"""

from __future__ import annotations

from typing import Any

#: Language index: 0 = Indonesian (``ID``, default), 1 = English (``US``).
ID, US = 0, 1

MESSAGES: dict[str, tuple[str, str]] = {
    # --- authentication (HTTP 401)
    "auth_missing_token": (
        "Header Authorization dengan Bearer API Token tidak ada",
        "Missing Authorization header with a Bearer API token",
    ),
    "auth_unknown_token": (
        "API Token tidak dikenal atau sudah dicabut",
        "Unknown or revoked API token",
    ),
    "session_missing": (
        "Header X-Session-ID tidak ada atau sesi Data Usaha tidak dikenal",
        "Missing X-Session-ID header or unknown database session",
    ),
    "session_expired": (
        "Sesi Data Usaha sudah tidak berlaku, buka ulang database",
        "The database session has expired; open the database again",
    ),
    "oauth_unknown_token": (
        "Access token OAuth tidak dikenal atau sudah kedaluwarsa",
        "Unknown or expired OAuth access token",
    ),
    "oauth_disabled": (
        "Aplikasi ini tidak memakai OAuth; gunakan API Token",
        "This app does not use OAuth; use an API token",
    ),
    "db_unknown": ('Data Usaha "{id}" tidak ditemukan', 'Database "{id}" not found'),
    "page_size_too_big": (
        "sp.pageSize: maksimal {max} data per halaman",
        "sp.pageSize: at most {max} rows per page",
    ),
    "auth_missing_timestamp": ("Header X-Api-Timestamp tidak ada", "Missing X-Api-Timestamp header"),
    "auth_bad_timestamp": (
        'Format X-Api-Timestamp "{value}" tidak dikenali '
        "(dd/MM/yyyy HH:mm:ss, ISO-8601, Unix detik/milidetik)",
        'Unrecognised X-Api-Timestamp "{value}" '
        "(expected dd/MM/yyyy HH:mm:ss, ISO-8601, Unix seconds/millis)",
    ),
    "auth_skew": (
        "X-Api-Timestamp berselisih {skew} detik dari waktu server (maksimal 600 detik)",
        "X-Api-Timestamp is {skew} seconds away from the server clock (at most 600 seconds allowed)",
    ),
    "auth_missing_signature": ("Header X-Api-Signature tidak ada", "Missing X-Api-Signature header"),
    "auth_bad_signature": (
        "X-Api-Signature tidak valid untuk X-Api-Timestamp yang dikirim",
        "Invalid X-Api-Signature for the X-Api-Timestamp sent",
    ),
    # --- limits and faults
    "rate_limited": (
        "Terlalu banyak permintaan: maksimal {rate} permintaan per detik, coba lagi dalam {retry} detik",
        "Too many requests: at most {rate} requests per second, retry in {retry} seconds",
    ),
    "too_many_in_flight": (
        "Terlalu banyak permintaan bersamaan: maksimal {limit} permintaan sekaligus",
        "Too many concurrent requests: at most {limit} in flight",
    ),
    "server_error": ("Terjadi kesalahan pada server", "Internal server error"),
    "gateway_timeout": ("Waktu tunggu server habis", "Gateway timeout"),
    # --- request shape
    "unknown_module": ('Modul "{module}" tidak dikenal', 'Unknown module "{module}"'),
    "unknown_action": (
        'Aksi "{action}" tidak tersedia untuk modul "{module}"',
        'Action "{action}" is not available for module "{module}"',
    ),
    "method_not_allowed": (
        "Metode {method} tidak diizinkan untuk {action}",
        "Method {method} is not allowed for {action}",
    ),
    "malformed_body": ("Isi permintaan tidak valid: {reason}", "Malformed request body: {reason}"),
    "read_only": ("Modul {label} hanya dapat dibaca", "Module {label} is read-only"),
    "bulk_too_many": (
        "Jumlah data maksimal 100 per bulk-save, dikirim {count}",
        "At most 100 records per bulk-save, {count} sent",
    ),
    "bulk_empty": ("Tidak ada data untuk disimpan (data[])", "No records to save (data[])"),
    "bad_paging": ('{field}: nilai "{value}" tidak valid', '{field}: invalid value "{value}"'),
    "bad_filter_op": (
        'filter.{field}.op: operator "{op}" tidak dikenal',
        'filter.{field}.op: unknown operator "{op}"',
    ),
    "filter_missing_value": ("filter.{field}.val harus diisi", "filter.{field}.val is required"),
    "missing_lookup": (
        "Parameter {params} harus diisi",
        "Parameter {params} is required",
    ),
    # --- results
    "saved": ('Data "{number}" berhasil disimpan', 'Data "{number}" saved successfully'),
    "deleted": ('Data "{number}" berhasil dihapus', 'Data "{number}" deleted successfully'),
    "not_found": (
        '{label} dengan {param} "{value}" tidak ditemukan',
        '{label} with {param} "{value}" not found',
    ),
    # --- business rules (HTTP 200, s: false)
    "duplicate_number": (
        "Sudah ada data lain dengan No Form # {number}",
        "Another record already exists with Form No # {number}",
    ),
    "duplicate_master": (
        "Sudah ada data lain dengan {key_label} # {value}",
        "Another record already exists with {key_label} # {value}",
    ),
    "required": ("{field}: harus diisi", "{field}: is required"),
    "not_a_number": (
        '{field}: nilai "{value}" bukan angka yang valid',
        '{field}: "{value}" is not a valid number',
    ),
    "negative": ("{field}: tidak boleh negatif ({value})", "{field}: must not be negative ({value})"),
    "not_positive": (
        "{field}: harus lebih besar dari 0 ({value})",
        "{field}: must be greater than 0 ({value})",
    ),
    "bad_date": (
        '{field}: tanggal "{value}" tidak valid (format dd/MM/yyyy)',
        '{field}: invalid date "{value}" (format dd/MM/yyyy)',
    ),
    "bad_choice": (
        '{field}: nilai "{value}" tidak valid, pilih salah satu dari {choices}',
        '{field}: invalid value "{value}", expected one of {choices}',
    ),
    "item_not_found": (
        '{field}: Barang dengan kode "{value}" tidak ditemukan',
        '{field}: Item "{value}" not found',
    ),
    "customer_not_found": (
        '{field}: Pelanggan dengan No "{value}" tidak ditemukan',
        '{field}: Customer "{value}" not found',
    ),
    "vendor_not_found": (
        '{field}: Pemasok dengan No "{value}" tidak ditemukan',
        '{field}: Vendor "{value}" not found',
    ),
    "warehouse_not_found": (
        '{field}: Gudang "{value}" tidak ditemukan',
        '{field}: Warehouse "{value}" not found',
    ),
    "branch_not_found": ('{field}: Cabang "{value}" tidak ditemukan', '{field}: Branch "{value}" not found'),
    "glaccount_not_found": (
        '{field}: Akun Perkiraan "{value}" tidak ditemukan',
        '{field}: GL account "{value}" not found',
    ),
    "document_not_found": (
        "{field}: {label} dengan No Form # {value} tidak ditemukan",
        "{field}: {label} with Form No # {value} not found",
    ),
    "branch_required": (
        "branchName: Cabang harus diisi karena database ini memiliki lebih dari satu cabang",
        "branchName: a branch is required because this database has several branches",
    ),
    "warehouse_required": (
        "{field}: Gudang harus diisi (tidak ada gudang bawaan untuk cabang ini)",
        "{field}: a warehouse is required (no default warehouse for this branch)",
    ),
    "unit_unknown": (
        '{field}: Satuan "{value}" tidak dikenal untuk barang "{item}" (satuan: {unit})',
        '{field}: unit "{value}" is unknown for item "{item}" (unit: {unit})',
    ),
    "not_inventory": (
        '{field}: Barang "{value}" bukan barang persediaan',
        '{field}: item "{value}" is not an inventory item',
    ),
    "lines_required": ("{field}: minimal satu rincian harus diisi", "{field}: at least one line is required"),
    "line_not_found": (
        "{field}: rincian dengan id {value} tidak ditemukan",
        "{field}: line with id {value} not found",
    ),
    "transfer_out_required": (
        "fromItemTransferNo: Pemindahan Barang Keluar harus diisi untuk TRANSFER_IN",
        "fromItemTransferNo: the transfer-out number is required for TRANSFER_IN",
    ),
    "transfer_out_missing": (
        "fromItemTransferNo: Pemindahan Barang Keluar # {value} tidak ditemukan",
        "fromItemTransferNo: transfer-out # {value} not found",
    ),
    "transfer_warehouse_mismatch": (
        'warehouseName: Gudang tujuan "{value}" berbeda dengan gudang tujuan Pemindahan Barang Keluar '
        '# {out} ("{expected}")',
        'warehouseName: destination warehouse "{value}" differs from the destination of transfer-out '
        '# {out} ("{expected}")',
    ),
    "transit_exceeded": (
        '{field}: Kuantitas barang "{item}" ({quantity}) melebihi barang dalam perjalanan dari '
        "Pemindahan Barang Keluar # {out} (sisa {available})",
        '{field}: quantity of item "{item}" ({quantity}) exceeds the goods in transit from '
        "transfer-out # {out} ({available} left)",
    ),
    "same_warehouse": (
        "referenceWarehouseName: Gudang tujuan tidak boleh sama dengan gudang asal",
        "referenceWarehouseName: destination must differ from the source warehouse",
    ),
    "negative_stock": (
        'Stok barang "{item}" di gudang "{warehouse}" tidak mencukupi: tersedia {available}, '
        "dibutuhkan {needed}",
        'Not enough stock of item "{item}" in warehouse "{warehouse}": {available} available, '
        "{needed} needed",
    ),
    "customer_mismatch": (
        '{field}: {label} # {value} milik pelanggan "{owner}", bukan "{customer}"',
        '{field}: {label} # {value} belongs to customer "{owner}", not "{customer}"',
    ),
    "vendor_mismatch": (
        '{field}: {label} # {value} milik pemasok "{owner}", bukan "{vendor}"',
        '{field}: {label} # {value} belongs to vendor "{owner}", not "{vendor}"',
    ),
    "in_use": (
        "{label} # {value} tidak dapat dihapus/diubah karena sudah dipakai oleh transaksi lain",
        "{label} # {value} cannot be deleted/renumbered because other transactions use it",
    ),
    "key_immutable": (
        "{field}: tidak dapat diubah (sandbox)",
        "{field}: cannot be changed (sandbox)",
    ),
    # --- account host
    "webhook_none": (
        "Belum ada URL webhook yang didaftarkan untuk aplikasi ini",
        "No webhook URL is registered for this application",
    ),
    "history_params": (
        "Parameter from dan to harus diisi dengan format dd/MM/yyyy HH:mm:ss",
        "Parameters from and to are required, format dd/MM/yyyy HH:mm:ss",
    ),
    "history_window": (
        "Rentang waktu from-to maksimal 24 jam",
        "The from-to window must not exceed 24 hours",
    ),
    "history_order": ("Parameter from harus sebelum to", "Parameter from must be before to"),
    "history_too_old": (
        "Riwayat webhook hanya tersedia untuk 1 bulan terakhir",
        "Webhook history is only available for the last month",
    ),
}

#: Business names of the modules, per language.
MODULE_LABELS: dict[str, tuple[str, str]] = {
    "customer": ("Pelanggan", "Customer"),
    "vendor": ("Pemasok", "Vendor"),
    "item": ("Barang", "Item"),
    "warehouse": ("Gudang", "Warehouse"),
    "branch": ("Cabang", "Branch"),
    "glaccount": ("Akun Perkiraan", "GL account"),
    "sales-invoice": ("Faktur Penjualan", "Sales invoice"),
    "sales-receipt": ("Penerimaan Penjualan", "Sales receipt"),
    "sales-return": ("Retur Penjualan", "Sales return"),
    "item-transfer": ("Pemindahan Barang", "Item transfer"),
    "item-adjustment": ("Penyesuaian Persediaan", "Item adjustment"),
    "purchase-order": ("Pesanan Pembelian", "Purchase order"),
    "receive-item": ("Penerimaan Barang", "Receive item"),
    "purchase-invoice": ("Faktur Pembelian", "Purchase invoice"),
    "purchase-return": ("Retur Pembelian", "Purchase return"),
}

#: Labels of master keys in duplicate-key messages.
KEY_LABELS: dict[str, tuple[str, str]] = {
    "customer": ("No Pelanggan", "Customer No"),
    "vendor": ("No Pemasok", "Vendor No"),
    "item": ("Kode Barang", "Item No"),
    "warehouse": ("Nama Gudang", "Warehouse Name"),
    "branch": ("Nama Cabang", "Branch Name"),
    "glaccount": ("No Akun", "Account No"),
}


class Msg:
    """A message not yet rendered: ``code`` from :data:`MESSAGES` and its arguments.

    An argument given as an ``(indonesian, english)`` tuple is localised at render time.
    """

    __slots__ = ("code", "args")

    def __init__(self, code: str, **args: Any) -> None:
        self.code = code
        self.args = args

    def render(self, lang: int = ID) -> str:
        """The message text in language ``lang`` (:data:`ID` or :data:`US`)."""
        template = MESSAGES[self.code][lang]
        args = {k: (v[lang] if isinstance(v, tuple) else v) for k, v in self.args.items()}
        return template.format(**args)

    def __repr__(self) -> str:
        return f"Msg({self.code!r}, {self.args!r})"


def language_of(header_value: str | None) -> int:
    """Language index for an ``X-Language-Profile`` header (``US`` = English, else Indonesian)."""
    if header_value and header_value.strip().upper() in ("US", "EN", "EN-US"):
        return US
    return ID


def render(lang: int, code: str, **args: Any) -> str:
    """Shortcut: render message ``code`` with ``args`` in ``lang``."""
    return Msg(code, **args).render(lang)
