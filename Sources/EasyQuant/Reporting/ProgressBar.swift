import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A one-line progress bar on standard error, drawn only when standard error is a
/// terminal (so logs and pipes stay clean), at most ten times a second.
public final class ProgressBar: @unchecked Sendable {
    private let label: String
    private let unit: String
    private var total: Int
    private let enabled: Bool
    private let start = Date()
    private var lastDraw = Date.distantPast
    private let lock = Lock()

    /// `unit` names what is counted ("MB", "tok"); `scale` divides counts for display.
    public init(label: String, total: Int = 0, unit: String = "", scale: Double = 1, enabled: Bool? = nil) {
        self.label = label
        self.total = total
        self.unit = unit
        self.scale = scale
        self.enabled = enabled ?? (isatty(STDERR_FILENO) != 0)
    }
    private let scale: Double

    /// Reports `done` of `total` (a new total replaces the one given at creation).
    public func update(_ done: Int, of newTotal: Int? = nil) {
        guard enabled else { return }
        lock.withLock {
            if let newTotal { total = newTotal }
            let now = Date()
            guard done >= total || now.timeIntervalSince(lastDraw) >= 0.1 else { return }
            lastDraw = now
            let elapsed = now.timeIntervalSince(start)
            let fraction = total > 0 ? min(1, Double(done) / Double(total)) : 1
            let width = 28
            let filled = Int(fraction * Double(width))
            let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
            let rate = elapsed > 0 ? Double(done) / scale / elapsed : 0
            let eta = rate > 0 ? (Double(total - done) / scale) / rate : 0
            var line = "\(label) [\(bar)] \(Format.fixed(fraction * 100, 0))%"
            if !unit.isEmpty { line += "  \(Format.fixed(rate, rate < 100 ? 1 : 0)) \(unit)/s" }
            line += done >= total ? "  \(Format.duration(elapsed))" : "  ETA \(Format.duration(eta))"
            FileHandle.standardError.write(("\r\u{1B}[K" + line).data(using: .utf8)!)
        }
    }

    /// Clears the line.
    public func finish() {
        guard enabled else { return }
        FileHandle.standardError.write("\r\u{1B}[K".data(using: .utf8)!)
    }
}
