// Placeholder: benchmarks land here.
return 0;
