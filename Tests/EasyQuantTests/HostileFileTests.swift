import EasyQuant
import Foundation
import XCTest

/// Crafted files meet a one-line error naming the file, never a trap, a hang or a huge
/// allocation (docs/RELIABILITY.md). One test per class of problem; reproducers the fuzzers
/// found are at the end.
final class HostileFileTests: XCTestCase {
    var dir: String!
    override func setUpWithError() throws { dir = try TestFiles.temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    func eqm(_ bytes: [UInt8], name: String = "crafted.eqm", maxDecodedBytes: Int = SystemMemory.physicalBytes) throws -> EQMFile {
        try EQMFile(file: MappedFile(bytes: bytes, name: name), maxDecodedBytes: maxDecodedBytes)
    }

    func safetensors(header: String, data: [UInt8] = [], length: UInt64? = nil) -> [UInt8] {
        let h = Array(header.utf8)
        return withUnsafeBytes(of: (length ?? UInt64(h.count)).littleEndian, Array.init) + h + data
    }

    func write(_ bytes: [UInt8], _ name: String) throws -> String {
        let path = dir + "/" + name
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    // MARK: 1. Allocation bounds

    /// A tokenizer blob declaring 2^34 bytes is refused when the file is opened, before any
    /// allocation (it used to abort eqinspect, eqconvert and eqppl in the allocator).
    func testTokenizerBlobOverItsCapIsRefusedAtOpen() throws {
        var b = EQMBuilder()
        let i = b.add(frame: lyingZstdFrame(contentSize: 1 << 34), size: 1 << 34)
        let bytes = b.bytes(header: EQMBuilder.header(tensors: [], tokenizer: [("vocab.json", b.blob(i))]))
        let message = hostileError("crafted.eqm") { _ = try eqm(bytes) }
        XCTAssertEqual(message, "crafted.eqm: tokenizer file vocab.json: declares 17179869184 bytes, more than the 64 MiB a tokenizer file may have; the file is damaged; convert the model again with eqconvert")
    }

    /// A frame whose header declares far more content than its bytes could produce is refused
    /// before its output is allocated, even when the tensor's shape asks for that much.
    func testFrameDeclaringMoreThanItCanHoldIsRefusedBeforeAllocating() throws {
        var b = EQMBuilder()
        let i = b.add(frame: lyingZstdFrame(contentSize: 1 << 34), size: 1 << 34)
        let record = EQMBuilder.floatRecord("big", shape: [131072, 32768], data: b.blob(i))
        // However much memory the machine has: the frame check comes first.
        let file = try eqm(b.bytes(header: EQMBuilder.header(tensors: [record])), maxDecodedBytes: Int.max)
        let message = hostileError("crafted.eqm") { _ = try file.floats("big") }
        XCTAssertEqual(message, "crafted.eqm: tensor big data at byte 64 is corrupt: zstd frame of 17 bytes declares 17179869184 bytes of content, more than such a frame can hold (at most 557056); the file is damaged; convert the model again with eqconvert")
        XCTAssertEqual(Zstd.maxContentSize(frameLength: 17), 17 * 32768)
        XCTAssertEqual(Zstd.maxContentSize(frameLength: Int.max), Int.max)
    }

    /// A frame that declares a size other than the header's is refused, naming both numbers.
    func testFrameSizeDisagreeingWithTheHeaderIsRefused() throws {
        var b = EQMBuilder()
        let frame = try [Float](repeating: 1, count: 8).withUnsafeBytes { try Zstd.compress($0, level: 3) }
        let i = b.add(frame: frame, size: 16)  // the frame holds 32 bytes; the record says 16 (4 floats)
        let file = try eqm(b.bytes(header: EQMBuilder.header(tensors: [EQMBuilder.floatRecord("t", shape: [4], data: b.blob(i))])))
        let message = hostileError("crafted.eqm") { _ = try file.floats("t") }
        XCTAssertTrue(message?.contains("zstd frame holds 32 bytes, expected 16") == true, message ?? "")
    }

    /// A legal frame that inflates past the decoding budget gets an error, not an allocation:
    /// 1 MiB of zeros (a few hundred bytes of frame) against a 64 KiB budget.
    func testDecodingBeyondTheBudgetIsRefused() throws {
        var b = EQMBuilder()
        let i = b.add(floats: [Float](repeating: 0, count: 512 * 512))
        XCTAssertLessThan(b.frames[i].frame.count, 1024)
        let bytes = b.bytes(header: EQMBuilder.header(tensors: [EQMBuilder.floatRecord("zeros", shape: [512, 512], data: b.blob(i))]))
        XCTAssertEqual(try eqm(bytes).floats("zeros").count, 512 * 512, "within the machine's memory it decodes")
        let file = try eqm(bytes, maxDecodedBytes: 64 << 10)
        let message = hostileError("crafted.eqm") { _ = try file.floats("zeros") }
        XCTAssertTrue(message?.hasPrefix("crafted.eqm: tensor zeros needs 1048576 bytes decoded, more than the 65536 this reader may allocate at once") == true, message ?? "")
    }

    /// Decoded sizes come from the shape: a quantized record's scales must be exactly 4 bytes
    /// per block and its codes exactly the packed size.
    func testDeclaredSizesMustMatchTheShape() throws {
        var b = EQMBuilder()
        let codes = b.add(compressing: [UInt8](repeating: 1, count: 12))
        let scales = b.add(floats: [1, 2])
        func open(_ shape: [JSONValue], block: [JSONValue]) -> String? {
            let record = EQMBuilder.quantizedRecord("q", shape: shape, block: block, data: b.blob(codes), scales: b.blob(scales))
            return hostileError("crafted.eqm") { _ = try eqm(b.bytes(header: EQMBuilder.header(tensors: [record]))) }
        }
        XCTAssertNil(open([4, 3], block: [4, 2]), "4x3 in blocks of 4x2: 1x2 scales, 12 codes")
        XCTAssertEqual(open([4, 3], block: [4, 1]), "crafted.eqm: tensor q: scales hold 8 bytes, expected 12 for 3 blocks; the file is damaged; convert the model again with eqconvert")
        XCTAssertEqual(open([3, 3], block: [3, 2]), "crafted.eqm: tensor q: data holds 12 bytes, expected 9 for shape [3, 3]; the file is damaged; convert the model again with eqconvert")
    }

    // MARK: 2. Shapes and counts

    func testTheShapeRule() {
        XCTAssertEqual(ShapeRule.checkedElementCount([]), 1)
        XCTAssertEqual(ShapeRule.checkedElementCount([3, 0, 5]), 0)
        XCTAssertEqual(ShapeRule.checkedElementCount([1 << 31, 1 << 17]), 1 << 48)
        XCTAssertNil(ShapeRule.checkedElementCount([1 << 31, (1 << 17) + 1]))
        XCTAssertEqual(ShapeRule.checkedElementCount([1 << 31, 0]), 0)
        XCTAssertNil(ShapeRule.checkedElementCount([(1 << 31) + 1, 0]))
        XCTAssertNil(ShapeRule.checkedElementCount([Int.max, 0]))
        XCTAssertNil(ShapeRule.checkedElementCount([-1]))
        XCTAssertNil(ShapeRule.checkedElementCount([Int](repeating: 1, count: 17)))
        XCTAssertEqual(ShapeRule.checkedElementCount([Int](repeating: 1, count: 16)), 1)
        // Non-zero dimensions that overflow Int when multiplied are a violation, not a trap.
        XCTAssertNil(ShapeRule.checkedElementCount([1 << 31, 1 << 31, 1 << 31, 1 << 31, 0]))
    }

    /// A zero-element tensor with a huge dimension is refused by the safetensors reader.
    func testSafetensorsHugeZeroSizedShapesAreRefused() {
        for (shape, dim) in [("[1099511627776, 0]", "0 = 1099511627776"), ("[9223372036854775807, 0]", "0 = 9223372036854775807"),
                             ("[0, 4294967296]", "1 = 4294967296")] {
            let bytes = safetensors(header: #"{"x":{"dtype":"F32","shape":\#(shape),"data_offsets":[0,0]}}"#)
            let message = hostileError("z.safetensors") { _ = try SafetensorsFile(file: MappedFile(bytes: bytes, name: "z.safetensors")) }
            XCTAssertTrue(message?.contains("tensor x: shape \(shape) has dimension \(dim), more than the 2147483648 a dimension may have") == true, message ?? "nil")
        }
        let ok = safetensors(header: #"{"x":{"dtype":"F32","shape":[2147483648, 0],"data_offsets":[0,0]}}"#)
        XCTAssertEqual(try SafetensorsFile(file: MappedFile(bytes: ok, name: "ok")).tensors.first?.elementCount, 0)
    }

    /// The same rule in `.eqm`, for float and quantized records; a quantized `[2^31, 0]`
    /// tensor (allowed) dequantizes to nothing at once instead of looping over 2^31 rows.
    func testEQMHugeZeroSizedShapesAreRefused() throws {
        var b = EQMBuilder()
        let empty = b.add(compressing: [])
        for shape in [[JSONValue(1 << 40), 0], [.int(Int64.max), 0]] {
            let float = EQMBuilder.floatRecord("f", shape: shape, data: b.blob(empty))
            let message = hostileError("crafted.eqm") { _ = try eqm(b.bytes(header: EQMBuilder.header(tensors: [float]))) }
            XCTAssertTrue(message?.contains("tensor f: shape [\(shape[0].intValue!), 0] has dimension 0 = \(shape[0].intValue!), more than the 2147483648") == true, message ?? "nil")
            let quantized = EQMBuilder.quantizedRecord("q", shape: shape, block: [1, 1], data: b.blob(empty), scales: b.blob(empty))
            let q = hostileError("crafted.eqm") { _ = try eqm(b.bytes(header: EQMBuilder.header(tensors: [quantized]))) }
            XCTAssertTrue(q?.contains("has dimension 0") == true, q ?? "nil")
        }
        let sharing = EQMBuilder.quantizedRecord("q", shape: [JSONValue(1 << 31), 0], block: [1, 1], data: b.blob(empty), scales: b.blob(empty))
        XCTAssertEqual(hostileError("crafted.eqm") { _ = try eqm(b.bytes(header: EQMBuilder.header(tensors: [sharing]))) },
                       "crafted.eqm: tensor q scales: its bytes at 64 overlap those of tensor q data; the file is damaged; convert the model again with eqconvert")
        let noScales = b.add(compressing: [])
        let wide = EQMBuilder.quantizedRecord("q", shape: [JSONValue(1 << 31), 0], block: [1, 1], data: b.blob(empty), scales: b.blob(noScales))
        let file = try eqm(b.bytes(header: EQMBuilder.header(tensors: [wide])))
        XCTAssertEqual(try file.floats("q"), [])
        XCTAssertEqual(file.record("q")?.quantization?.layout.scaleShape, [1 << 31, 0])
    }

    /// Block shapes and group sizes are bounded; a block larger than its dimension is fine.
    func testBlockShapesAndGroupSizesAreChecked() throws {
        var b = EQMBuilder()
        let codes = b.add(compressing: [UInt8](repeating: 1, count: 6))
        let scale = b.add(floats: [0.5])
        func open(block: [JSONValue], groupSize: JSONValue = 0, axis: JSONValue = 1) -> String? {
            let record = EQMBuilder.quantizedRecord("q", shape: [2, 3], block: block, axis: axis, groupSize: groupSize,
                                                    data: b.blob(codes), scales: b.blob(scale))
            return hostileError("crafted.eqm") { _ = try eqm(b.bytes(header: EQMBuilder.header(tensors: [record]))) }
        }
        XCTAssertNil(open(block: [2, 3]))
        XCTAssertNil(open(block: [2147483648, 2147483648]), "one block covering the tensor")
        XCTAssertEqual(open(block: [1, 1099511627776]), "crafted.eqm: tensor q: block [1,1099511627776] is not two integers from 1 to 2147483648; the file is damaged; convert the model again with eqconvert")
        XCTAssertEqual(open(block: [0, 1]), "crafted.eqm: tensor q: block [0,1] is not two integers from 1 to 2147483648; the file is damaged; convert the model again with eqconvert")
        XCTAssertEqual(open(block: [2, "3"]), "crafted.eqm: tensor q: block [2,\"3\"] is not two integers from 1 to 2147483648; the file is damaged; convert the model again with eqconvert")
        XCTAssertEqual(open(block: [2, 3], groupSize: .int(Int64.max)), "crafted.eqm: tensor q: group_size 9223372036854775807 is not from 0 to 2147483648; the file is damaged; convert the model again with eqconvert")
        XCTAssertEqual(open(block: [2, 3], axis: "1"), "crafted.eqm: tensor q: axis \"1\" is not 0, 1 or null; the file is damaged; convert the model again with eqconvert")
        XCTAssertNil(open(block: [2, 3], axis: .null))
        // The block count arithmetic itself cannot overflow.
        XCTAssertEqual(BlockLayout(shape: [Int.max, 5], block: [Int.max, 2], axis: nil, groupSize: 0).scaleShape, [1, 3])
    }

    /// Overflowed numbers never reach a message: shapes that would overflow a block count are
    /// refused by the shape rule, which prints the numbers the file holds.
    func testMessagesNeverShowWrappedNumbers() throws {
        var b = EQMBuilder()
        let empty = b.add(compressing: [])
        let record = EQMBuilder.quantizedRecord("q", shape: [2147483648, 2147483648], block: [1, 1], data: b.blob(empty), scales: b.blob(empty))
        let message = hostileError("crafted.eqm") { _ = try eqm(b.bytes(header: EQMBuilder.header(tensors: [record]))) }
        XCTAssertEqual(message, "crafted.eqm: tensor q: shape [2147483648, 2147483648] has more than 2^48 elements (its non-zero dimensions multiply past 281474976710656); the file is damaged; convert the model again with eqconvert")
        XCTAssertNil(message?.range(of: #"-\d"#, options: .regularExpression))
    }

    // MARK: 3. Messages

    func testVersionZeroIsNotCalledNewer() throws {
        var b = EQMBuilder()
        b.major = 0
        let message = hostileError("crafted.eqm") { _ = try eqm(b.bytes(header: EQMBuilder.header(tensors: []))) }
        XCTAssertEqual(message, "crafted.eqm: format version 0.0 is not a version any EasyQuant writes (this reader reads 1.x); the file is damaged; convert the model again with eqconvert")
        b.major = 3
        XCTAssertTrue(hostileError("crafted.eqm") { _ = try eqm(b.bytes(header: EQMBuilder.header(tensors: []))) }?.contains("written by a newer EasyQuant") == true)
    }

    func testOversizedHeaderLengthNamesTheCap() throws {
        let b = EQMBuilder()
        let message = hostileError("crafted.eqm") { _ = try eqm(b.bytes(header: EQMBuilder.header(tensors: []), headerLength: (64 << 20) + 1)) }
        XCTAssertEqual(message, "crafted.eqm: header length 67108865 exceeds the 64 MiB limit; the file is damaged; convert the model again with eqconvert")
        let short = hostileError("crafted.eqm") { _ = try eqm(b.bytes(header: EQMBuilder.header(tensors: []), headerLength: 10)) }
        XCTAssertTrue(short?.contains("header at byte 64 of 10 bytes does not end the") == true, short ?? "nil")
        let tiny = hostileError("crafted.eqm") { _ = try eqm(Array(b.bytes(header: EQMBuilder.header(tensors: [])).prefix(20))) }
        XCTAssertEqual(tiny, "crafted.eqm: only 20 bytes, shorter than the 32-byte .eqm preamble (truncated?); the file is damaged; convert the model again with eqconvert")
    }

    /// Each reader names the format it was given instead of misparsing it.
    func testAFileOfAnotherFormatIsNamed() throws {
        let golden = TestFiles.fixture("golden/golden-v1.0.eqm")
        let gguf = TestFiles.fixture("gguf/all_types.gguf")
        let st = TestFiles.fixture("safetensors/all_dtypes.safetensors")
        XCTAssertEqual(ModelFileFormat.sniff(path: golden), .eqm)
        XCTAssertEqual(ModelFileFormat.sniff(path: gguf), .gguf)
        XCTAssertEqual(ModelFileFormat.sniff(path: st), .safetensors)
        XCTAssertNil(ModelFileFormat.sniff(path: TestFiles.fixture("tiny-gpt2/merges.txt")))
        XCTAssertNil(ModelFileFormat.sniff(path: TestFiles.fixture("golden")), "a folder has no format")
        XCTAssertNil(ModelFileFormat.sniff(path: dir + "/missing"))

        XCTAssertEqual(hostileError(golden) { _ = try SafetensorsFile(path: golden) },
                       "\(golden): this is an .eqm file, not safetensors; give the original .safetensors file (or its folder)")
        XCTAssertEqual(hostileError(golden) { _ = try SafetensorsModel(path: golden) },
                       "\(golden): this is an .eqm file, not safetensors; give the original .safetensors file (or its folder)")
        XCTAssertEqual(hostileError(gguf) { _ = try SafetensorsFile(path: gguf) },
                       "\(gguf): this is a GGUF file, not safetensors; give the model's .safetensors file (or its folder)")
        XCTAssertEqual(hostileError(st) { _ = try EQMFile(path: st) },
                       "\(st): this is a safetensors file, not an .eqm file; convert it with eqconvert first")
        XCTAssertEqual(hostileError(gguf) { _ = try EQMFile(path: gguf) },
                       "\(gguf): this is a GGUF file, not an .eqm file; EasyQuant converts safetensors models; give an .eqm file written by eqconvert")
    }

    /// Names with control characters, and very long names, still give one-line messages.
    func testNamesFromTheFileCannotBreakTheMessageLine() throws {
        let bytes = safetensors(header: #"{"a\nb\u0007":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0])
        let message = hostileError("n.safetensors") { _ = try SafetensorsFile(file: MappedFile(bytes: bytes, name: "n.safetensors")) }
        XCTAssertTrue(message?.hasPrefix(#"n.safetensors: tensor a\nb\u{7}: unknown dtype "F33""#) == true, message ?? "nil")
        let long = String(repeating: "x", count: 5000)
        let longBytes = safetensors(header: #"{"\#(long)":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0])
        let cut = hostileError("n.safetensors") { _ = try SafetensorsFile(file: MappedFile(bytes: longBytes, name: "n.safetensors")) }
        XCTAssertTrue(cut?.contains(String(repeating: "x", count: 120) + "…: unknown dtype") == true, cut ?? "nil")
        XCTAssertEqual(MessageText.clean("tab\there\u{85}"), #"tab\there\u{85}"#)
    }

    // MARK: 4. Inputs that are not regular files

    /// A FIFO without a writer used to block every tool in open(); now every reader refuses it
    /// (and a directory, and a device) by name without opening it.
    func testFIFOsDirectoriesAndDevicesAreRefusedWithoutBlocking() throws {
        let fifo = dir + "/pipe"
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        let expected = "\(fifo): is a FIFO (named pipe), not a regular file; EasyQuant reads only regular files (copy the data into a file first)"
        XCTAssertEqual(hostileError(fifo) { _ = try MappedFile(path: fifo) }, expected)
        XCTAssertEqual(hostileError(fifo) { _ = try InputFiles.read(fifo, what: "test file") }, expected)
        XCTAssertEqual(hostileError(fifo) { _ = try SafetensorsFile(path: fifo) }, expected)
        XCTAssertEqual(hostileError(fifo) { _ = try SafetensorsModel(path: fifo) }, expected)
        XCTAssertEqual(hostileError(fifo) { _ = try EQMFile(path: fifo) }, expected)
        XCTAssertEqual(hostileError(fifo) { _ = try SHA256Hasher.hex(ofFile: fifo) }, expected)
        XCTAssertNil(ModelFileFormat.sniff(path: fifo))
        XCTAssertFalse(EQMSniffer.isEQM(path: fifo))
        XCTAssertFalse(GGUFFile.isGGUF(path: fifo))
        XCTAssertEqual(InputFile.kind(of: fifo), .special("a FIFO (named pipe)"))

        XCTAssertEqual(hostileError("/dev/zero") { _ = try InputFiles.read("/dev/zero", what: "test file") },
                       "/dev/zero: is a character device, not a regular file; EasyQuant reads only regular files (copy the data into a file first)")
        XCTAssertEqual(hostileError(dir) { _ = try MappedFile(path: dir) }, "\(dir!): is a directory where a file is expected; give the file itself")
        XCTAssertEqual(hostileError(dir + "/none") { _ = try MappedFile(path: dir + "/none") }, "\(dir!)/none: cannot open: no such file")
    }

    /// Companion files of a model folder are refused the same way: config.json, tokenizer
    /// files, the shard index, a shard.
    func testCompanionFilesThatAreFIFOsAreRefused() throws {
        let source = TestFiles.fixture("gpt2-variants/hf-save-pretrained")
        func folder(_ name: String, replacing: String) throws -> String {
            let folder = dir + "/" + name
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            for f in try FileManager.default.contentsOfDirectory(atPath: source) where f != replacing {
                try FileManager.default.copyItem(atPath: source + "/" + f, toPath: folder + "/" + f)
            }
            XCTAssertEqual(mkfifo(folder + "/" + replacing, 0o600), 0)
            return folder
        }
        for file in ["config.json", "model.safetensors"] {
            let f = try folder(file, replacing: file)
            XCTAssertEqual(hostileError(f) { _ = try SafetensorsModel(path: f) },
                           "\(f)/\(file): is a FIFO (named pipe), not a regular file; EasyQuant reads only regular files (copy the data into a file first)")
        }
        let tok = try folder("tok", replacing: "vocab.json")
        try FileManager.default.copyItem(atPath: TestFiles.fixture("tiny-gpt2/merges.txt"), toPath: tok + "/merges.txt")
        XCTAssertEqual(hostileError(tok) { _ = try SafetensorsModel(path: tok) },
                       "\(tok)/vocab.json: is a FIFO (named pipe), not a regular file; EasyQuant reads only regular files (copy the data into a file first)")
        XCTAssertThrowsError(try BPETokenizer.load(directory: tok)) {
            XCTAssertEqual("\($0)", "\(tok)/vocab.json: cannot read: is a FIFO (named pipe), not a regular file; EasyQuant reads only regular files (copy the data into a file first); check that the file exists and is readable")
        }
        let sharded = dir + "/sharded"
        try FileManager.default.createDirectory(atPath: sharded, withIntermediateDirectories: true)
        XCTAssertEqual(mkfifo(sharded + "/" + SafetensorsModel.indexFileName, 0o600), 0)
        XCTAssertEqual(hostileError(sharded) { _ = try SafetensorsModel(path: sharded) },
                       "\(sharded)/model.safetensors.index.json: is a FIFO (named pipe), not a regular file; EasyQuant reads only regular files (copy the data into a file first)")
    }

    // MARK: 5. Everything else

    /// Non-finite values in an `.eqm` float tensor (F32, F16 or BF16) are refused by name:
    /// EasyQuant never writes them, and no reader downstream has to cope with them.
    func testNonFiniteFloatsInAnEQMAreRefused() throws {
        var b = EQMBuilder()
        let f32 = b.add(floats: [1, 2, 3, .nan])
        let f16 = b.add(compressing: [Float16(1), Float16.infinity].flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) })
        let fine = b.add(floats: [1, -0.0, .leastNonzeroMagnitude, .greatestFiniteMagnitude])
        let file = try eqm(b.bytes(header: EQMBuilder.header(tensors: [
            EQMBuilder.floatRecord("nan", shape: [4], data: b.blob(f32)),
            EQMBuilder.floatRecord("inf", shape: [2], dtype: "F16", data: b.blob(f16)),
            EQMBuilder.floatRecord("fine", shape: [2, 2], data: b.blob(fine)),
        ])))
        XCTAssertEqual(hostileError("crafted.eqm") { _ = try file.floats("nan") },
                       "crafted.eqm: tensor nan data at byte 64 is corrupt: value 3 is nan; EasyQuant never writes non-finite values; the file is damaged; convert the model again with eqconvert")
        XCTAssertTrue(hostileError("crafted.eqm") { _ = try file.floats("inf") }?.contains("value 1 is inf") == true)
        XCTAssertEqual(try file.floats("fine"), [1, -0.0, .leastNonzeroMagnitude, .greatestFiniteMagnitude])
    }

    /// Numbers the JSON parser must not misread, and nesting that must not exhaust the stack.
    func testJSONEdgeNumbersAndDepth() throws {
        XCTAssertEqual(try JSONValue.parse("-0"), .int(0))
        XCTAssertEqual(try JSONValue.parse("18446744073709551616"), .double(18446744073709551616))
        XCTAssertNil(try JSONValue.parse("18446744073709551616").intValue)
        XCTAssertNil(try JSONValue.parse("9.3e18").intValue)
        XCTAssertEqual(try JSONValue.parse("-9223372036854775808"), .int(Int64.min))
        XCTAssertThrowsError(try JSONValue.parse("1e400")) { XCTAssertEqual(($0 as? JSONParseError)?.reason, "number out of range") }
        XCTAssertThrowsError(try JSONValue.parse("-1e400"))
        let deep = [UInt8](repeating: UInt8(ascii: "["), count: 1 << 20)
        XCTAssertThrowsError(try JSONValue.parse(deep)) { XCTAssertEqual(($0 as? JSONParseError)?.offset, 256) }
        let deepObjects = String(repeating: #"{"a":"#, count: 100_000)
        XCTAssertThrowsError(try JSONValue.parse(deepObjects)) { XCTAssertEqual(($0 as? JSONParseError)?.reason, "nesting deeper than 256") }
        let ok = String(repeating: "[", count: 256) + String(repeating: "]", count: 256)
        XCTAssertNoThrow(try JSONValue.parse(ok))
    }

    /// The deepest JSON accepted (256 levels) parses within a 128 KiB stack, far below what
    /// any thread gets (512 KiB for Dispatch workers, 8 MiB for the main thread), so the limit
    /// and not the stack is what stops a deeper one.
    func testMaximumNestingParsesOnASmallStack() {
        let text = Array((String(repeating: #"{"k":["#, count: 128) + "1" + String(repeating: "]}", count: 128)).utf8)
        final class Result: @unchecked Sendable { var value: JSONValue? }  // written before `done` is signalled
        let parsed = Result()
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            parsed.value = try? JSONValue.parse(text)
            done.signal()
        }
        thread.stackSize = 128 << 10
        thread.start()
        done.wait()
        XCTAssertNotNil(parsed.value)
        XCTAssertEqual(parsed.value?.serialized().utf8.count, text.count)
    }

    /// Header numbers of the wrong kind in safetensors: 2^64, 1e400, fractions, -0.
    func testSafetensorsHeaderNumbers() {
        func message(_ header: String) -> String? {
            let bytes = safetensors(header: header, data: [0, 0, 0, 0])
            return hostileError("n.safetensors") { _ = try SafetensorsFile(file: MappedFile(bytes: bytes, name: "n.safetensors")) }
        }
        XCTAssertTrue(message(#"{"x":{"dtype":"F32","shape":[18446744073709551616],"data_offsets":[0,4]}}"#)?
            .contains("has a dimension that is not a non-negative integer") == true)
        XCTAssertTrue(message(#"{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,1e400]}}"#)?.contains("number out of range at byte") == true)
        XCTAssertTrue(message(#"{"x":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}}"#)?.contains("not a non-negative integer") == true)
        XCTAssertNil(message(#"{"x":{"dtype":"F32","shape":[1],"data_offsets":[-0,4]}}"#), "-0 is 0")
        XCTAssertTrue(message(#"{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"x":{}}"#)?.contains(#"duplicate key "x""#) == true)
        let badUTF8: [UInt8] = Array(#"{""#.utf8) + [0xFF] + Array(#"":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#.utf8)
        let bytes = withUnsafeBytes(of: UInt64(badUTF8.count).littleEndian, Array.init) + badUTF8 + [0, 0, 0, 0]
        XCTAssertTrue(hostileError("u") { _ = try SafetensorsFile(file: MappedFile(bytes: bytes, name: "u")) }?.contains("string is not valid UTF-8") == true)
    }

    /// Duplicate names in an `.eqm` tensor list, and a duplicate key in its header.
    func testDuplicateNamesAreRefused() throws {
        var b = EQMBuilder()
        let i = b.add(floats: [1])
        let record = EQMBuilder.floatRecord("w", shape: [1], data: b.blob(i))
        XCTAssertEqual(hostileError("crafted.eqm") { _ = try eqm(b.bytes(header: EQMBuilder.header(tensors: [record, record]))) },
                       "crafted.eqm: tensor w: appears twice in the tensor list; the file is damaged; convert the model again with eqconvert")
    }

    /// Shard indexes may only name `.safetensors` files inside their own folder, each file once,
    /// and must agree with what the shards hold.
    func testShardIndexesCannotReachOutsideTheFolder() throws {
        let source = TestFiles.fixture("gpt2-variants/sharded")
        func folder(_ name: String, index: (inout [(key: String, value: JSONValue)]) -> Void) throws -> String {
            let folder = dir + "/" + name
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            for f in try FileManager.default.contentsOfDirectory(atPath: source) where f != SafetensorsModel.indexFileName {
                try FileManager.default.copyItem(atPath: source + "/" + f, toPath: folder + "/" + f)
            }
            let original = try JSONValue.parse(InputFiles.read(source + "/" + SafetensorsModel.indexFileName, what: "index"))
            var map = original["weight_map"]!.objectMembers!
            index(&map)
            try JSONValue.makeObject([("weight_map", .object(map))]).serialized()
                .write(toFile: folder + "/" + SafetensorsModel.indexFileName, atomically: true, encoding: .utf8)
            return folder
        }
        XCTAssertEqual(try SafetensorsModel(path: try folder("intact") { _ in }).shards.count, 3)
        for (i, target) in ["../../etc/passwd", "../sharded/model-00001-of-00003.safetensors", "sub/x.safetensors",
                            "config.json", "x\u{0}.safetensors", ""].enumerated() {
            let f = try folder("bad\(i)") { $0[0].value = .string(target) }
            let message = hostileError(f) { _ = try SafetensorsModel(path: f) }
            XCTAssertTrue(message?.contains("not the name of a .safetensors file in the index's folder") == true, message ?? "nil")
        }
        let moved = try folder("moved") { $0[0].value = "model-00003-of-00003.safetensors" }
        XCTAssertEqual(hostileError(moved) { _ = try SafetensorsModel(path: moved) },
                       "\(moved)/model.safetensors.index.json: tensor transformer.h.0.attn.c_attn.bias is listed in model-00003-of-00003.safetensors but is in model-00001-of-00003.safetensors; fix the index or give the shard files' folder a valid one")
        let phantom = try folder("phantom") { $0.append((key: "ghost.weight", value: "model-00001-of-00003.safetensors")) }
        XCTAssertTrue(hostileError(phantom) { _ = try SafetensorsModel(path: phantom) }?.contains("tensor ghost.weight is listed in model-00001-of-00003.safetensors but no shard holds it") == true)
        // Two names for one file: a link to a shard listed beside the shard itself.
        let linked = try folder("linked") { $0[0].value = "again.safetensors" }
        try FileManager.default.createSymbolicLink(atPath: linked + "/again.safetensors", withDestinationPath: "model-00001-of-00003.safetensors")
        XCTAssertEqual(hostileError(linked + "/model-00001") { _ = try SafetensorsModel(path: linked) },
                       "\(linked)/model-00001-of-00003.safetensors is the same file as \(linked)/again.safetensors (a link?); each shard must be listed once")
    }

    // MARK: Found by fuzzing (scripts/fuzz; docs/RELIABILITY.md lists the runs)

    /// fuzz-gguf, first minute: a metadata key holding a newline (and a NUL) made a GGUF error
    /// message two lines long. Names, keys and fields are now escaped in every reader's errors.
    func testGGUFKeyWithANewlineGivesAOneLineError() {
        var b = GGUFBuilder()
        b.kv(rawKey: Array("test.\u{0}\n4".utf8), type: 99, [])
        let message = hostileError("crafted.gguf") { _ = try GGUFFile(file: MappedFile(bytes: b.bytes, name: "crafted.gguf")) }
        XCTAssertTrue(message?.hasPrefix(#"crafted.gguf: key test.\u{0}\n4: unknown value type 99 at byte"#) == true, message ?? "nil")
    }

    /// fuzz-tokenizer, 20:08 on 2026-12-03: a 2.8 KiB tokenizer.json listing 300 tokens, one
    /// of them with id 10,588,888, sized the vocabulary tables to 10.6 million ids (1.6 s and
    /// hundreds of MB per load under AddressSanitizer). Ids may leave gaps, but the id space is
    /// now bounded by twice the tokens listed (+ 1024).
    func testSparseIdsFarBeyondTheTokenCountAreRefused() throws {
        func json(_ id: Int) -> [UInt8] {
            Array(#"{"pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,"use_regex":true},"model":{"type":"BPE","vocab":{"a":0,"b":1,"c":ID},"merges":[]}}"#
                .replacingOccurrences(of: "ID", with: String(id)).utf8)
        }
        XCTAssertThrowsError(try BPETokenizer(tokenizerJSON: json(10_588_888))) {
            XCTAssertEqual("\($0)", "tokenizer.json: not a usable byte-level BPE vocabulary: it lists 3 tokens but uses ids up to 10588888; ids may leave gaps, but must stay below 1030 (2 × tokens + 1024); use the tokenizer files that belong to the model, unmodified")
        }
        // A gap within the bound still loads, and decodes to U+FFFD.
        let gappy = try BPETokenizer(tokenizerJSON: json(1029))
        XCTAssertEqual(gappy.decodeText([0, 2]), "a\u{FFFD}")
        XCTAssertThrowsError(try BPETokenizer(tokenizerJSON: json(1030)))
    }

    /// fuzz-tokenizer, first minute: an added token that gives a model.vocab id another text
    /// (`<|endoftextl>` for id 300, `<|endoftext|>` in the vocabulary) loaded, and then its
    /// special token decoded to different bytes than it encoded. The tokenizer work, merged
    /// since, refuses it by itself; this keeps the fuzzer's case.
    func testAddedTokenContradictingTheVocabularyIsRefused() {
        let json = #"{"pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,"use_regex":true},"model":{"type":"BPE","vocab":{"a":0,"<|endoftext|>":1},"merges":[]},"added_tokens":[{"id":1,"content":"<|endoftextl>","special":true}]}"#
        XCTAssertThrowsError(try BPETokenizer(tokenizerJSON: Array(json.utf8))) {
            XCTAssertTrue("\($0)".hasPrefix("tokenizer.json: "), "\($0)")
            XCTAssertTrue("\($0)".contains(#"added_tokens[0] "<|endoftextl>" has id 1, which model.vocab gives to "<|endoftext|>""#), "\($0)")
        }
        let agreeing = json.replacingOccurrences(of: "endoftextl", with: "endoftext|")
        XCTAssertNoThrow(try BPETokenizer(tokenizerJSON: Array(agreeing.utf8)), "an added token that repeats its entry is fine")
    }

    /// fuzz-eqm, after 7 minutes: a tokenizer file named "tok\nizer.json" whose entry is not a
    /// blob gave a two-line message. Names are escaped where the message is built, and every
    /// reader's description escapes whatever control character is left.
    func testEQMTokenizerFileNameWithANewlineGivesAOneLineError() {
        var b = EQMBuilder()
        let i = b.add(compressing: Array("{}".utf8))
        var notABlob = b.blob(i).objectMembers!
        notABlob[0].key = "\u{7f}ffset"
        let header = EQMBuilder.header(tensors: [], tokenizer: [("tok\nizer.json", .object(notABlob))])
        XCTAssertEqual(hostileError("crafted.eqm") { _ = try eqm(b.bytes(header: header)) },
                       #"crafted.eqm: header: tokenizer file tok\nizer.json is not a blob; the file is damaged; convert the model again with eqconvert"#)
        XCTAssertEqual(EQMError(path: "a\nb.eqm", problem: .badHeader("x\ry")).description,
                       #"a\nb.eqm: header: x\ry; the file is damaged; convert the model again with eqconvert"#)
    }

    /// fuzz-gguf, after the merge of the new tokenizer: a GGUF vocabulary whose merge "o r"
    /// produced a token marked unused lost "or" from every text ("Hello world" came back as
    /// "Hello wld"). Merges may now only join normal tokens; anything else is refused at load.
    func testMergesIntoTokensThatAreNotNormalAreRefused() throws {
        for type in [TokenType.unused, .control, .userDefined] {
            let description = TokenizerDescription(tokens: ["o", "r", "or"], merges: ["o r"], tokenTypes: [.normal, .normal, type],
                                                   preTokenizer: "gpt2", source: "crafted.gguf")
            XCTAssertThrowsError(try BPETokenizer(description: description)) {
                XCTAssertEqual("\($0)".components(separatedBy: ": not")[0], "crafted.gguf")
                XCTAssertTrue("\($0)".contains(#"merge 1 involves token 2 "or", which is of type \#(type); merges may only join normal tokens"#), "\($0)")
            }
        }
        let fine = TokenizerDescription(tokens: ["o", "r", "or"], merges: ["o r"], preTokenizer: "gpt2", source: "fine")
        let tokenizer = try BPETokenizer(description: fine)
        XCTAssertEqual(try tokenizer.encode(utf8: Array("or".utf8), addBOS: false, addEOS: false), [2])
    }

    /// fuzz-gguf, on the merged main: a vocabulary-only GGUF whose `tokenizer.ggml.pre` holds a
    /// newline gave a two-line "unknown pre-tokenizer" message. Tokenizer errors now pass through
    /// `MessageText.oneLine` like the readers' errors.
    func testUnknownPreTokenizerNameWithANewlineGivesAOneLineError() throws {
        let description = TokenizerDescription(tokens: ["o", "r"], merges: [], preTokenizer: "smol\nlm\u{7}", source: "crafted.gguf")
        XCTAssertThrowsError(try BPETokenizer(description: description)) {
            XCTAssertTrue("\($0)".hasPrefix(#"crafted.gguf: unknown pre-tokenizer "smol\nlm\u{7}"; the known ones are "#), "\($0)")
            XCTAssertFalse("\($0)".contains("\n"))
        }
    }
}
