/// Lets global options stand before or after the command words.
///
/// ArgumentParser reads a subcommand's options only after its name; scripts write
/// `coffre --as X doc list` as often as `coffre doc list --as X`. `hoist` moves the global
/// options (with their values) behind the command words, keeping their order, and leaves
/// everything after `--` alone.
public enum ArgumentHoisting {
    /// - Parameter options: global option names, and whether each takes a value.
    public static func hoist(_ arguments: [String], options: [String: Bool]) -> [String] {
        var commandWords: [String] = []
        var globals: [String] = []
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            if argument == "--" {
                return commandWords + globals + arguments[index...]
            }
            let name = argument.split(separator: "=", maxSplits: 1).first.map(String.init) ?? argument
            if let takesValue = options[name] {
                globals.append(argument)
                if takesValue, !argument.contains("="), index + 1 < arguments.count {
                    globals.append(arguments[index + 1])
                    index += 1
                }
            } else {
                commandWords.append(argument)
            }
            index += 1
        }
        return commandWords + globals
    }
}
