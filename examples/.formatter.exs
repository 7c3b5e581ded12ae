# `make lint` checks the Elixir example with `mix format --check-formatted`.
[
  inputs: ["*.exs"],
  line_length: 100
]
