#if FUZZING
    import Foundation

    /// libFuzzer's entry point (built with `-sanitize=fuzzer,address -DFUZZING`, see
    /// `make fuzz`). Which parser is fuzzed comes from `COFFRE_FUZZ_TARGET`.
    @_cdecl("LLVMFuzzerTestOneInput")
    public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
        FuzzEntry.target.run(Array(UnsafeBufferPointer(start: data, count: size)))
        return 0
    }

    /// SwiftPM links an executable target's entry point as `<target>_main` (so that tests can
    /// import executables); libFuzzer's own `main` is then never pulled from its archive, so this
    /// entry point hands the command line to libFuzzer's driver itself.
    @_cdecl("coffre_fuzz_main")
    public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
        var count = argc
        var arguments = argv
        return LLVMFuzzerRunDriver(&count, &arguments) { data, size in
            guard let data else { return 0 }
            return fuzz(data, size)
        }
    }

    @_silgen_name("LLVMFuzzerRunDriver")
    func LLVMFuzzerRunDriver(
        _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
        _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
    ) -> CInt

    enum FuzzEntry {
        static let target: FuzzTarget = {
            let name = ProcessInfo.processInfo.environment["COFFRE_FUZZ_TARGET"] ?? ""
            guard let target = FuzzTarget(rawValue: name) else {
                let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")
                FileHandle.standardError.write(Data("set COFFRE_FUZZ_TARGET to one of: \(names)\n".utf8))
                exit(64)
            }
            return target
        }()
    }
#endif
