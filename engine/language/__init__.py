"""The expression language: JMESPath expressions and templates, the function library, CTIM mappings."""
