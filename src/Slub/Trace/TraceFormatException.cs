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

    public TraceFormatException(string fileName, long lineNumber, string lineText, string reason)
        : base($"{fileName}:{lineNumber}: {reason}: {lineText}")
    {
        FileName = fileName;
        LineNumber = lineNumber;
        LineText = lineText;
        Reason = reason;
    }
}
