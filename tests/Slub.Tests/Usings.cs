global using Xunit;
global using Slub;
