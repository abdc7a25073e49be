import Foundation

/// Windows of calibration text: `samples` non-overlapping windows of `length` tokens, drawn
/// deterministically (by `seed`) from the token sequence of a text file.
///
/// Calibrate on a different text from the one you evaluate on: scoring a model on the text
/// it was calibrated on flatters it. `eqppl` warns when the two files are the same.
public struct CalibrationSet: Sendable {
    public var windows: [[Int32]]
    public var source: String
    public var sha256: String
    public var textTokens: Int
    public var seed: UInt64

    public enum Failure: Error, CustomStringConvertible, Equatable {
        case missing(path: String)
        case tooShort(path: String, tokens: Int, samples: Int, length: Int)

        public var description: String {
            switch self {
            case .missing(let p):
                return "\(p): calibration text not found; give a UTF-8 text file with --calib (e.g. fixtures/calibration/corpus-calib.txt)"
            case let .tooShort(p, n, s, l):
                return "\(p): \(n) tokens is too short for \(s) windows of \(l) tokens (\(s * l) needed); give a longer text or lower --calib-samples / --calib-len"
            }
        }
    }

    /// Tokenizes `path` and draws the windows.
    public init(path: String, tokenizer: BPETokenizer, samples: Int, length: Int, seed: UInt64, threads: Int = Parallel.defaultThreads) throws {
        guard FileManager.default.fileExists(atPath: path) else { throw Failure.missing(path: path) }
        let tokens = try EvaluationSetup.tokens(ofTextFile: path, tokenizer: tokenizer, threads: threads)
        try self.init(tokens: tokens, samples: samples, length: length, seed: seed, source: path)
        sha256 = try SHA256Hasher.hex(ofFile: path)
    }

    /// Draws the windows from an existing token sequence: the sequence is cut into
    /// consecutive slots of `length` tokens and `samples` of them are picked by a seeded shuffle.
    public init(tokens: [Int32], samples: Int, length: Int, seed: UInt64, source: String = "tokens") throws {
        precondition(samples > 0 && length > 1)
        let slots = tokens.count / length
        guard slots >= samples else {
            throw Failure.tooShort(path: source, tokens: tokens.count, samples: samples, length: length)
        }
        var order = Array(0..<slots)
        var rng = SeededGenerator(seed: seed)
        order.shuffle(using: &rng)
        windows = order.prefix(samples).sorted().map { Array(tokens[($0 * length)..<(($0 + 1) * length)]) }
        self.source = source
        sha256 = ""
        textTokens = tokens.count
        self.seed = seed
    }

    /// What the .eqm records about the calibration.
    public var metadata: JSONValue {
        .makeObject([
            ("file", .string((source as NSString).lastPathComponent)), ("sha256", .string(sha256)),
            ("text_tokens", JSONValue(textTokens)), ("samples", JSONValue(windows.count)),
            ("length", JSONValue(windows.first?.count ?? 0)), ("seed", .int(Int64(bitPattern: seed))),
        ])
    }
}
