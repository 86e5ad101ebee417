"""SignatureModule: what every exported tf.Module shares (the interface `export_saved_model` drives).

A subclass sets `self._functions` ({signature name: tf.function with an input signature}), `default_signature`
and `model_variables = []` in its constructor, and gives `describe` the input fields its signatures take.
"""

import types

import tensorflow as tf


class SignatureModule(tf.Module):
    @property
    def signature_names(self):
        return list(self._functions)

    def add_functions(self, functions, fields=None):
        """Adds signatures ({name: tf.function with an input signature}) beside the constructor's ones.

        fields: {input name: JSON-friendly description} of inputs the module's own `describe` does not know.
        """
        clash = sorted(set(functions) & set(self._functions))
        if clash:
            raise ValueError(f"signatures already defined: {', '.join(clash)}")
        self._functions = types.MappingProxyType(dict(self._functions, **functions))
        self._extra_fields = types.MappingProxyType(dict(getattr(self, "_extra_fields", {}), **(fields or {})))

    def concrete_function(self, signature_name):
        """Traces (once) and returns the concrete function of a signature."""
        return self._functions[signature_name].get_concrete_function()

    def signatures(self):
        """{signature name: concrete function} for `tf.saved_model.save`, serving_default included.

        Also tracks the tf.Variables the functions capture. Those, not the Keras variables wrapping them,
        must be the saved objects: a Keras variable is exported as a second variable around the first, and
        a TF1-style loader (TF Serving, saved_model_cli run) then restores the wrapper while the functions
        read the inner variable, which stays uninitialised ("Could not find variable ...").
        """
        out = {name: self.concrete_function(name) for name in self._functions}
        captured, seen = [], set()
        for function in out.values():
            for variable in function.variables:
                if id(variable) not in seen:
                    seen.add(id(variable))
                    captured.append(variable)
        self.model_variables = captured
        out[tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY] = out[self.default_signature]
        return out

    def describe_signatures(self, fields, extra=None):
        """{signature: {"inputs": {name: fields[name]}, "outputs": {name: dtype and shape}, **extra}}.

        fields: {input name: JSON-friendly description}; extra: more keys for every signature.
        """
        fields = dict(fields, **getattr(self, "_extra_fields", {}))
        description = {}
        for name in self._functions:
            function = self.concrete_function(name)
            args = function.structured_input_signature[0][0]  # {name: spec}, or one spec (tokenize)
            args = [args.name] if isinstance(args, tf.TensorSpec) else list(args)
            outputs = {
                key: {"dtype": spec.dtype.name, "shape": [-1 if d is None else d for d in spec.shape.as_list()]}
                for key, spec in function.structured_outputs.items()
            }
            description[name] = {"inputs": {key: fields[key] for key in args}, "outputs": outputs, **(extra or {})}
        return description
