namespace Slub.Trace;

/// <summary>A line of a trace is not ftrace text the replayer can read. Names the file, the line number and the line.</summary>
public sealed class TraceFormatException : FormatException
{
    /// <summary>The trace's file name ("-" for standard input).</summary>
    public string FileName { get; }
    /// <summary>1-based line number.</summary>
    public long LineNumber { get; }
    /// <summary>The offending line (cut at 500 characters).</summary>
    public string LineText { get; }
    /// <summary>What is wrong with it.</summary>
    public string Reason { get; }

    /// <summary>Creates the exception; its message is <c>file:line: reason: text</c>.</summary>
    /// <param name="fileName">The trace's file name.</param>
    /// <param name="lineNumber">1-based line number.</param>
    /// <param name="lineText">The offending line.</param>
    /// <param name="reason">What is wrong with it.</param>
    public TraceFormatException(string fileName, long lineNumber, string lineText, string reason)
        : base($"{fileName}:{lineNumber}: {reason}: {lineText}")
    {
        FileName = fileName;
        LineNumber = lineNumber;
        LineText = lineText;
        Reason = reason;
    }
}
