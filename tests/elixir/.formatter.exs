[
  inputs: ["{mix,.formatter}.exs", "test/**/*.{ex,exs}"],
  line_length: 100
]
