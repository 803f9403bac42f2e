// Placeholder: replaced by the FactoryCa host.
return 0;
