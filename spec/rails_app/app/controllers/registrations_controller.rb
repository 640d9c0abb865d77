# frozen_string_literal: true

class RegistrationsController < ApplicationController
  actions :new, :create
end
