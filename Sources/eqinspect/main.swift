import ArgumentParser
import EasyQuant
import EasyQuantCLI
import Foundation

/// eqinspect: what an .eqm (or GGUF, or safetensors) file holds, what its codes are worth, and what
/// quantization cost against the original.
struct EQInspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eqinspect",
        abstract: "Show what an .eqm, GGUF or safetensors model holds and what quantizing it cost.",
        discussion: """
        Prints the header (format, sources with their SHA-256, tool, method and settings, totals) and a \
        table of every tensor: shape, storage, scale and zero-point ranges, compressed bytes, stored bits \
        per weight and the order-0 entropy of its codes, then how close the file comes to that entropy \
        bound. --stats adds value statistics, --compare the error against the original model, --plot an \
        SVG of original against quantized weight distributions. FILE may also be a .safetensors file, \
        a model folder, or a GGUF file (llama.cpp's format, v2/v3): then the header shows its version, \
        alignment and every metadata key, the table each tensor's ggml type, and --stats works through \
        dequantization. For a GGUF FILE, --compare takes the .eqm it was exported from and reports the \
        difference per tensor (names mapped through the family's llama.cpp table, values compared in \
        the canonical layout).
        """,
        version: EasyQuantVersion.string)

    @Argument(help: "An .eqm file, a .gguf file, a .safetensors file, or a Hugging Face model folder.")
    var file: String

    @Flag(help: "Per-tensor statistics of the (dequantized) weights: min, max, mean, std, abs max, exact zeros, codes at the clamp limits.")
    var stats = false

    @Option(name: .customLong("tensor"), help: ArgumentHelp("A tensor to draw a histogram of (text, or in --plot). Repeatable.", valueName: "name"))
    var tensors: [String] = []

    @Option(help: ArgumentHelp("The original model (.safetensors file or folder): per-tensor MSE, max abs error, SQNR and cosine of the dequantized weights. For a GGUF FILE: the .eqm it was exported from.", valueName: "original"))
    var compare: String?

    @Option(help: ArgumentHelp("Write the original-vs-quantized weight distributions of the --tensor tensors (default: a few representative ones) as an SVG figure.", valueName: "out.svg"))
    var plot: String?

    @Option(help: ArgumentHelp("For a smoothquant file: draw the per-channel activation maxima before and after smoothing (of --layer) as an SVG figure.", valueName: "out.svg"))
    var plotSmoothing: String?

    @Option(parsing: .unconditional, help: "The block whose smoothing --plot-smoothing draws.")
    var layer = 0

    @Option(parsing: .unconditional, help: "Bins of the text histograms.")
    var bins = 32

    @Option(parsing: .unconditional, help: "Bins of the plotted histograms.")
    var plotBins = 120

    @OptionGroup var threading: ThreadOptions

    @Flag(help: "Print everything as one JSON document.")
    var json = false

    func validate() throws {
        guard layer >= 0 else { throw ValidationError("--layer must be 0 or more, not \(layer)") }
        guard (1...10_000).contains(bins) else { throw ValidationError("--bins must be between 1 and 10000") }
        guard (1...10_000).contains(plotBins) else { throw ValidationError("--plot-bins must be between 1 and 10000") }
    }

    func run() throws {
        try ToolPaths.checkInput(file, role: "model file (.eqm, GGUF, .safetensors) or model folder", directoryAllowed: true)
        var inputs = ToolPaths.modelFiles(file)
        if let compare {
            try ToolPaths.checkInput(compare, role: "original model (.safetensors or model folder)", directoryAllowed: true)
            inputs += ToolPaths.modelFiles(compare)
            if GGUFFile.isGGUF(path: file), EQMSniffer.isEQM(path: compare) {
                // A GGUF export against its .eqm: the per-tensor difference only.
                let comparison = try GGUFComparison(gguf: GGUFFile(path: file), eqm: EQMFile(path: compare), threads: threading.threads)
                print(json ? comparison.json.prettyPrinted() : comparison.text, terminator: json ? "\n" : "")
                return
            }
        }
        for output in [plot, plotSmoothing].compactMap({ $0 }) { try ToolPaths.refuseOverwriting(output, inputs: inputs) }
        if let plot, plot == plotSmoothing { throw ValidationError("--plot and --plot-smoothing name the same file \(plot)") }
        if let plotSmoothing {
            let figure = try SmoothingFigure(file: EQMFile(path: file), layer: layer)
            try writeAtomically(Array(figure.render().utf8), to: plotSmoothing)
        }
        // --tensor feeds the plot when there is one; text histograms are drawn for it when
        // there is no plot, or when --stats asks for statistics anyway.
        let textHistograms = plot == nil || stats ? tensors : []
        let options = InspectionOptions(statistics: stats, original: compare, histogramTensors: textHistograms,
                                        plotPath: plot, plotTensors: tensors, histogramBins: bins, plotBins: plotBins,
                                        threads: threading.threads)
        let report = try ModelInspector(options: options).inspect(path: file)
        print(json ? report.json.prettyPrinted() : report.text(), terminator: json ? "\n" : "")
    }
}

EQInspect.main()
