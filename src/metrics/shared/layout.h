/* SPDX-License-Identifier: Apache-2.0 */
// The on-disk layout of a shared metrics directory, version 1
// (docs/multiprocess.md, "Layout"): the constants, the fixed-size records and
// the decoders that turn the bytes of a slot file or of the families file
// into values. Every byte read here may have been written by another process
// (or by anyone who can write the directory): the decoders check every
// offset, length and count against the bytes actually read, never trust a
// count to size an allocation, and report damage as Error(CM_ECORRUPT).
//
// All integers are the host's native byte order and width: a directory is
// shared by the processes of one machine (the layout file names the byte
// order, so a directory copied to another kind of machine is refused).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace cm::shared {

constexpr uint32_t kLayoutVersion = 1;

// The files of a directory.
inline constexpr char kLayoutName[] = "cachemeter-shared";  // text; the directory's identity and lock
inline constexpr char kFamiliesName[] = "families.cm";
inline constexpr char kCompactName[] = "compact.cm";
// Slot i is "slot-<i>.cm", i in [0, max_workers); slot_name() spells it.
std::string slot_name(uint32_t i);
// The first line of the layout file, then "layout 1", "byte_order ...",
// "max_workers N".
inline constexpr char kLayoutTitle[] = "cachemeter shared metrics directory";

constexpr uint32_t kMaxWorkersLimit = 4096;
constexpr uint32_t kCompactSlot = 0xFFFFFFFFu;  // SlotHeader::slot of compact.cm

// ---- slot files -------------------------------------------------------------
//
// [0, 112)                  SlotHeader
// [128, 128 + 8*4096)       compact.cm: the folded table (below); else zero
// [table_offset, +16*max_chunks)   ChunkEntry per chunk
// [dir_offset, +dir_capacity)       series records, appended
// [chunks_offset, +max_chunks*32 KiB)  chunks of kChunkWords 64-bit words
//
// A chunk is a BASE chunk or a THREAD chunk of one pool chunk number. A
// series owns words [word, word + width) of pool chunk word / kChunkWords.
// In the base chunk, its first word is the series' generation and the
// others its folded payload (values of exited threads, gauge sets); in each
// thread chunk, its first word is the generation the cell was written under
// (a cell counts only when it equals the base's) and the others the
// thread's payload. Payload words [0, ndoubles) are doubles (summed as
// doubles), the rest integer counts (summed as int64): cm::cells' layout.
// Files are sparse: only the pages written take space.

inline constexpr char kSlotMagic[8] = {'C', 'M', 'S', 'L', 'O', 'T', '\0', '\1'};
constexpr uint32_t kChunkWords = 4096;
constexpr uint64_t kChunkBytes = kChunkWords * 8;
constexpr uint32_t kHeaderBytes = 4096;
constexpr uint32_t kDefaultMaxChunks = 4096;            // 128 MiB of cells (sparse)
constexpr uint32_t kMaxChunksLimit = 4096;              // what a reader accepts: 128 MiB per slot read
constexpr uint64_t kDefaultDirCapacity = 64ull << 20;   // series records (sparse)
constexpr uint64_t kMaxDirCapacity = 1ull << 30;
constexpr uint32_t kMaxRecordBytes = 1u << 20;
constexpr uint32_t kMaxWidth = 1 + 1 + 1024;            // generation + sum + buckets (+Inf)
constexpr uint32_t kMaxLabelValues = 64;

// How a gauge family's per-worker values become one (docs/multiprocess.md).
enum class GaugeMode : uint8_t { Sum = 0, Max, Min, LiveSum, LiveMax, MostRecent, All };
constexpr uint8_t kGaugeModes = 7;
const char* gauge_mode_name(GaugeMode m);
bool parse_gauge_mode(std::string_view s, GaugeMode* out);

enum class SlotState : uint32_t { Empty = 0, InUse = 1, Folded = 2 };
enum class ChunkRole : uint32_t { Free = 0, Base = 1, Thread = 2 };

// Fixed once the file is made: magic .. file_bytes. The rest changes while
// an owner writes and is read with atomic loads (std::atomic_ref).
struct SlotHeader {
  char magic[8];
  uint32_t version;
  uint32_t slot;           // index in the directory, or kCompactSlot
  uint32_t chunk_words;    // kChunkWords
  uint32_t max_chunks;
  uint64_t table_offset;
  uint64_t dir_offset;
  uint64_t dir_capacity;
  uint64_t chunks_offset;
  uint64_t file_bytes;
  // Seqlock: odd while the owner moves values between words (a thread's
  // exit folding its cells into the base, a reset, a gauge set, a chunk
  // taken or freed). Readers retry on a change; the hot path never writes it.
  uint64_t seq;
  uint64_t incarnation;    // bumped each time a process claims the slot
  uint64_t pid;            // the claimer's, for people
  uint64_t dir_used;       // bytes of records published (release)
  uint32_t state;          // SlotState
  uint32_t nchunks;        // table entries in use: [0, nchunks)
  uint64_t claimed_unix_ms;
};
static_assert(sizeof(SlotHeader) == 112);
// compact.cm: uint64_t folded[kMaxWorkersLimit] from here; folded[i] is the
// incarnation of slot i last folded in (0: none), and a reader skips slot i
// while its incarnation equals it. Zero (and sparse) in slot files.
constexpr uint64_t kFoldedOffset = 128;
constexpr uint64_t kTableOffset = 36864;  // the header page and the folded table, page aligned
static_assert(kFoldedOffset + 8 * kMaxWorkersLimit <= kTableOffset && kTableOffset % 4096 == 0);

struct ChunkEntry {
  uint32_t role;        // ChunkRole
  uint32_t pool_chunk;  // which chunk of the series' word space
  uint64_t tag;         // Thread: the writing thread's arena id (for people)
};
static_assert(sizeof(ChunkEntry) == 16);

// A series record: this header, then nvalues label values, each a uint32_t
// length and its bytes, then zero padding to a multiple of 8.
struct SeriesRecord {
  uint32_t bytes;   // the whole record, a multiple of 8
  uint32_t family;  // index in families.cm
  uint32_t word;    // first word in the pool's word space
  uint32_t width;   // 1 + payload words
  uint16_t ndoubles;
  uint16_t nvalues;
  // A gauge series' own GaugeMode (sum, max, min, livesum, livemax), or
  // kFamilyMode: its family's. The library's cache gauges sum a memory
  // cache's entries over workers but count a shared store's once.
  uint8_t gauge_mode;
  uint8_t pad[3];
  // When this worker last set the series (cm_gauge_set, a reset):
  // CLOCK_MONOTONIC nanoseconds, comparable between the processes of one
  // boot; 0: never. Written (atomically) after the record is published; what
  // gauge mode mostrecent compares.
  uint64_t set_ns;
};
constexpr uint8_t kFamilyMode = 0xFF;
constexpr size_t kSetNsOffset = 24;  // of set_ns in a record
static_assert(sizeof(SeriesRecord) == 32 && offsetof(SeriesRecord, set_ns) == kSetNsOffset);

// Where the parts of a slot file go for a given geometry.
struct Geometry {
  uint32_t max_chunks = kDefaultMaxChunks;
  uint64_t dir_capacity = kDefaultDirCapacity;
  uint64_t table_offset() const { return kTableOffset; }
  uint64_t dir_offset() const;
  uint64_t chunks_offset() const;
  uint64_t file_bytes() const;
};

// One series of a slot as read: its family, label values and folded payload
// (payload.size() == width - 1).
struct SlotSeries {
  uint32_t family = 0;
  uint32_t ndoubles = 0;
  uint8_t gauge_mode = kFamilyMode;
  uint64_t set_ns = 0;
  std::vector<std::string> values;
  std::vector<uint64_t> payload;
};

struct SlotContents {
  uint32_t slot = 0;
  uint64_t incarnation = 0;
  uint64_t pid = 0;
  SlotState state = SlotState::Empty;
  std::vector<uint64_t> folded;  // kMaxWorkersLimit entries; zeros but in compact.cm
  std::vector<SlotSeries> series;
};

// Checks the fixed part of a slot file's header against the file's size:
// magic, version, geometry inside the file. Throws Error(CM_ECORRUPT) naming
// `what` and what is wrong. head holds at least sizeof(SlotHeader) bytes.
SlotHeader check_slot_header(const uint8_t* head, uint64_t file_size, std::string_view what);

// Reads a slot file's contents from an open descriptor with pread (never a
// mapping: a file truncated under a mapping kills its reader with SIGBUS).
// Consistent with its owner's seqlock: retries while a move is in progress
// (at most `tries` times; then the last read counts). Throws
// Error(CM_ECORRUPT) on damage, Error(CM_EUNAVAILABLE) on an I/O error.
SlotContents read_slot(int fd, std::string_view what, int tries = 1000);

// The same decoder over bytes in memory (the fuzz harness; tests).
SlotContents decode_slot(const uint8_t* data, size_t size, std::string_view what);

// ---- families.cm ------------------------------------------------------------
//
// [0, 64)   FamiliesHeader
// [64, ...) family records, appended under the directory lock: a
//           FamilyRecord, then name, help, each label name (uint32_t length
//           + bytes) and nbounds doubles, zero padded to a multiple of 8.
// A family's id is its position (0, 1, ...). Records are never changed.

inline constexpr char kFamiliesMagic[8] = {'C', 'M', 'F', 'A', 'M', 'S', '\0', '\1'};
struct FamiliesHeader {
  char magic[8];
  uint32_t version;
  uint32_t count;  // records published
  uint64_t used;   // bytes of records published, from kFamiliesStart
};
constexpr uint64_t kFamiliesStart = 64;
constexpr uint64_t kMaxFamiliesBytes = 256ull << 20;
constexpr uint32_t kMaxFamilyNames = 4096;  // label names per family, and string lengths are checked too

struct FamilyRecord {
  uint32_t bytes;
  uint8_t kind;        // cm::Kind
  uint8_t gauge_mode;  // GaugeMode
  uint16_t flags;
  uint32_t nlabels;
  uint32_t nbounds;
};
static_assert(sizeof(FamilyRecord) == 16);

struct FamilyDef {
  uint8_t kind = 0;
  uint8_t gauge_mode = 0;
  std::string name, help;
  std::vector<std::string> label_names;
  std::vector<double> bounds;
};

// Encodes a record (to append) / decodes every record of a families file.
std::string encode_family(const FamilyDef& f);
std::vector<FamilyDef> decode_families(const uint8_t* data, size_t size, std::string_view what);

}  // namespace cm::shared
